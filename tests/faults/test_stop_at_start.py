"""A stop that arrives while the worker is still starting (importing its libraries, loading the
model, preparing the data) ends the run as `stopped`, never as `failed`: once the stop
interrupted an import, the import error it caused used to become the run's error
("Failed to import trl.trainer.sft_trainer ...")."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.faults.conftest import events, of_type, wait_for
from workbench import locations
from workbench.cli.main import main
from workbench.jobs import launch, store
from workbench.run import events as ev
from workbench.run.layout import STDERR
from workbench.run.spec import JobSpec

pytestmark = pytest.mark.faults

LONG_RUN = ["--set", "max_steps=150", "--set", "batch_size=2", "--set", "eval_steps=0", "--set", "save_steps=1000"]


@pytest.mark.parametrize("delay", [0.1, 0.5, 1.5, 3.0])
def test_a_stop_at_any_moment_of_the_start_ends_as_stopped(tiny_project, capsys, delay):
    assert main(["train", tiny_project, *LONG_RUN]) == 0  # returns once the worker wrote `started`
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    time.sleep(delay)
    try:
        store.stop(tiny_project, run_id)
    except store.RunError:
        pass  # it ended first: then it must have completed (checked below)

    info = store.wait(tiny_project, run_id, timeout=120, poll=0.1)
    got = events(tiny_project, run_id)
    stderr = (info.path / STDERR).read_text(errors="replace")
    assert info.state in ("stopped", "completed"), (info.state, info.message, stderr[-2000:])
    assert not of_type(got, ev.Error), stderr[-2000:]
    finished = of_type(got, ev.Finished)
    assert len(finished) == 1 and finished[0].reason == info.state
    assert got[-1] is finished[0]  # nothing written after the final event
    if info.state == "stopped" and of_type(got, ev.TrainBegin):
        assert info.resumable  # stopped while training: a checkpoint was saved first


# A library whose import takes its time (as torch's or TRL's does), and two runners that import it
# the way libraries do: transformers' lazy modules wrap an import's failure in their own error; an
# optional import swallows it, and the code fails further on.
SLOW_LIBRARY = """
from pathlib import Path
import time

Path("importing").write_text("")  # in the job's folder, the worker's working directory
time.sleep(60)
"""

RUNNERS = """
import importlib


def wrapped_import(spec, job):
    try:
        importlib.import_module("slow_library")
    except Exception as exc:
        raise RuntimeError("Failed to import slow_library because of the following error") from exc


def swallowed_import(spec, job):
    try:
        library = importlib.import_module("slow_library")
    except Exception:
        library = None
    return library.train()
"""


@pytest.mark.parametrize("runner", ["wrapped_import", "swallowed_import"])
def test_a_stop_that_a_library_turns_into_another_error_is_still_a_stop(home, tmp_path, monkeypatch, runner):
    code = tmp_path / "code"
    code.mkdir()
    (code / "slow_library.py").write_text(SLOW_LIBRARY)
    (code / "stop_runners.py").write_text(RUNNERS)
    monkeypatch.setenv("PYTHONPATH", str(code), prepend=os.pathsep)  # the worker inherits it (and what was there)
    spec = JobSpec(id="job-1", project="p", method="sft", base_model="none", params={}, train=[],
                   runner=f"stop_runners:{runner}")
    run_dir = launch.start(spec)
    wait_for(lambda: (run_dir / "importing").exists(), timeout=60, what="the slow import")

    store.stop_job(run_dir)
    info = store.wait_job(run_dir, timeout=60, poll=0.1)
    stderr = (run_dir / STDERR).read_text(errors="replace")
    assert info.state == "stopped", (info.message, stderr[-2000:])
    got = ev.read_all(run_dir / "events.jsonl")
    assert not of_type(got, ev.Error) and [e.reason for e in of_type(got, ev.Finished)] == ["stopped"]
    assert "A stop interrupted the preparation" in stderr  # what the stop broke is kept for whoever looks


def test_a_stop_sent_before_the_worker_can_take_it_waits_for_it(home):
    """A worker started with SIGTERM blocked (as a launcher can start it) takes a stop sent while the
    interpreter was still starting once its handler is in place: stopped, not killed."""
    spec = JobSpec(id="job-1", project="p", method="sft", base_model="none", params={}, train=[],
                   runner="workbench.jobs.worker:load_runner")  # never reached
    run_dir = locations.run_dir("p", "job-1")
    run_dir.mkdir(parents=True)
    spec.save(run_dir)
    blocked = {signal.SIGTERM, signal.SIGINT}
    with open(run_dir / STDERR, "wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "workbench.jobs.worker", str(run_dir)], stderr=stderr,
                                start_new_session=True,
                                preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_BLOCK, blocked))
    proc.send_signal(signal.SIGTERM)  # at once: the interpreter has not even started
    assert proc.wait(timeout=60) == 0, (run_dir / STDERR).read_text()
    got = ev.read_all(run_dir / "events.jsonl")
    assert [e.type for e in got] == ["finished"] and got[0].reason == "stopped"
    assert store.read(run_dir).state == "stopped"
