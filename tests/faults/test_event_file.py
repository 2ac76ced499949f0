"""A damaged `events.jsonl`: a last line cut by a kill, and a line whose values have the wrong types.

A resumed worker used to append its `started` to the cut line, so the reader dropped both: the run
read as the dead life (`lost`, the old banner) while the new worker trained. A line such as
`"step": "abc"` reached the monitor and crashed it (TypeError). Now the writer begins a new line,
and the reader skips the bad lines and counts them; the monitor says how many it skipped."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from tests.e2e.conftest import make_constant_project
from tests.faults.conftest import cli, events, of_type, wait_for
from tests.ui.test_monitor import SIZE, MonitorApp, log_text, text_of
from tests.ui.test_monitor import wait_for as ui_wait_for
from workbench import locations
from workbench.jobs import store
from workbench.run import events as ev

pytestmark = pytest.mark.faults

STEPS = 30
RUN = ["--set", f"max_steps={STEPS}", "--set", "save_steps=5", "--set", "logging_steps=1", "--set", "eval_steps=0",
       "--set", "batch_size=2"]


def cut_last_line(path) -> str:
    """Cut the file in the middle of its last line, as a kill in the middle of a write does; the part kept."""
    data = path.read_bytes()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    keep = start + (len(data) - start) // 2
    with open(path, "r+b") as f:
        f.truncate(keep)
    return data[start:keep].decode()


@pytest.fixture(scope="module")
def resumed(tiny_model, tmp_path_factory):
    """(project, run id, the cut text, the run's state just after `resume` returned): a run killed
    (SIGKILL) after its first checkpoint, its events cut mid-line, then resumed and left to complete."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(tmp_path_factory.mktemp("projects")))
        project = make_constant_project("cut", tiny_model, tmp_path_factory.mktemp("data"))
        result = cli("train", project, *RUN)
        assert result.returncode == 0, result.stderr
        run_id = result.stdout.strip().splitlines()[-1]
        wait_for(lambda: of_type(events(project, run_id), ev.Checkpoint), what="a checkpoint")
        os.killpg(os.getpgid(store.get(project, run_id).pid), signal.SIGKILL)
        wait_for(lambda: store.get(project, run_id).state == "lost", timeout=30, what="the lost state")
        cut = cut_last_line(locations.run_dir(project, run_id) / "events.jsonl")

        result = cli("resume", project, run_id)  # returns once the worker's `started` is read
        assert result.returncode == 0, result.stderr
        after_resume = store.get(project, run_id)
        store.wait(project, run_id, timeout=300, poll=0.2)
        yield project, run_id, cut, after_resume


def test_a_resume_after_a_cut_line_is_read_and_runs_to_the_end(resumed):
    project, run_id, cut, after_resume = resumed
    assert after_resume.state == "running" and after_resume.alive  # not `lost`, not `starting`

    lines = (locations.run_dir(project, run_id) / "events.jsonl").read_text().splitlines()
    assert cut in lines  # the cut line stands alone: the resumed worker began a new line
    got = events(project, run_id)
    restarts = [e for e in got if isinstance(e, ev.Started)]
    assert len(restarts) == 2 and "checkpoint-" in restarts[1].resumed_from
    info = store.get(project, run_id)
    assert (info.state, info.step) == ("completed", STEPS)
    tail = ev.EventTail(locations.run_dir(project, run_id) / "events.jsonl")
    assert tail.read_new()[-1].type == "finished" and tail.skipped == 1


async def test_the_monitor_shows_a_run_whose_file_holds_a_line_of_wrong_types(resumed):
    project, run_id, _, _ = resumed
    path = locations.run_dir(project, run_id) / "events.jsonl"
    with open(path, "a") as f:
        f.write(json.dumps({"type": "log", "step": "abc", "total_steps": STEPS, "loss": 1.0, "time": time.time()}))
        f.write("\n")
    app = MonitorApp(project, run_id)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await ui_wait_for(pilot, lambda: screen.history.finished and screen.info is not None, what="the history")
        stats = text_of(screen.query_one("#stats"))
        assert "completed" in stats and f"{STEPS}/{STEPS}" in stats
        assert sorted(screen.history.train) == list(range(1, STEPS + 1))
        assert len(screen.history.lives) == 2 and "resumed from checkpoint-" in log_text(screen)
        assert not screen.query_one("#error").display
        assert screen.query_one("#log").border_subtitle == "2 unreadable lines skipped"  # the cut one and "abc"
