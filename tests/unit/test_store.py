"""A run's state is derived from its files: the last terminal event, else the worker's liveness."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from workbench import locations
from workbench import project as projects
from workbench.jobs import store
from workbench.run import liveness
from workbench.run import events as ev
from workbench.run.spec import DataSource, JobSpec


def make_run(project: str, run_id: str, events: list[ev.Event], pid: int | None = None,
             heartbeat_age: float | None = None, checkpoint: int | None = None):
    run_dir = locations.run_dir(project, run_id)
    (run_dir / "checkpoints").mkdir(parents=True)
    JobSpec(id=run_id, project=project, method="sft", base_model="default", params={},
            train=[DataSource(dataset="d", file="d.jsonl", kind="chat")]).save(run_dir)
    writer = ev.EventWriter(run_dir / "events.jsonl")
    for event in events:
        writer.emit(event)
    writer.close()
    if pid is not None:
        (run_dir / "pid").write_text(f"{pid}\n")
    if heartbeat_age is not None:
        beat = run_dir / "heartbeat"
        beat.write_text("x")
        stamp = time.time() - heartbeat_age
        for name in ("heartbeat", "pid"):  # the launcher wrote the pid file no later than the first beat
            if (run_dir / name).exists():
                os.utime(run_dir / name, (stamp, stamp))
    if checkpoint is not None:
        folder = run_dir / "checkpoints" / f"checkpoint-{checkpoint}"
        folder.mkdir()
        (folder / "trainer_state.json").write_text("{}")
    return run_dir


@pytest.fixture
def proj(home):
    projects.create("p")
    return "p"


@pytest.fixture
def sleeper():
    """A live process standing in for a worker."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


TRAINED = [ev.Started(pid=1, method="sft"), ev.TrainBegin(total_steps=10),
           ev.Log(step=5, total_steps=10, loss=1.5), ev.Eval(step=5, loss=1.7), ev.Log(step=10, total_steps=10, loss=1.2)]


def test_completed(proj):
    make_run(proj, "r1", TRAINED + [ev.Finished(reason="completed", step=10, output="adapter")], pid=dead_pid())
    info = store.get(proj, "r1")
    assert (info.state, info.alive, info.step, info.total_steps) == ("completed", False, 10, 10)
    assert (info.last_loss, info.last_eval_loss, info.message) == (1.2, 1.7, "finished")
    assert not info.resumable  # a completed run is not resumed


def test_stopped_with_a_checkpoint_is_resumable(proj):
    make_run(proj, "r1", TRAINED[:3] + [ev.Checkpoint(step=5), ev.Finished(reason="stopped", step=5)],
             pid=dead_pid(), checkpoint=5)
    info = store.get(proj, "r1")
    assert info.state == "stopped" and "checkpoint saved" in info.message and info.resumable


def test_failed_carries_the_error_message(proj):
    make_run(proj, "r1", [ev.Started(pid=1), ev.Error(message="Out of memory. Lower batch_size", kind="out_of_memory")],
             pid=dead_pid())
    info = store.get(proj, "r1")
    assert (info.state, info.message, info.resumable) == ("failed", "Out of memory. Lower batch_size", False)


def test_dead_worker_without_final_event_is_lost(proj):
    make_run(proj, "r1", TRAINED[:3], pid=dead_pid(), heartbeat_age=1, checkpoint=5)
    info = store.get(proj, "r1")
    assert info.state == "lost" and not info.alive and "killed" in info.message
    assert info.resumable


def test_live_worker_with_fresh_heartbeat_is_running(proj, sleeper):
    make_run(proj, "r1", TRAINED[:3], pid=sleeper, heartbeat_age=0)
    make_run(proj, "r2", [], pid=sleeper, heartbeat_age=0)
    assert (store.get(proj, "r1").state, store.get(proj, "r1").alive) == ("running", True)
    assert store.get(proj, "r2").state == "starting"


def test_live_pid_with_stale_heartbeat_is_lost(proj, sleeper):
    """A reused pid or a hung worker: the heartbeat is what proves it is ours and alive."""
    make_run(proj, "r1", TRAINED[:3], pid=sleeper, heartbeat_age=liveness.HEARTBEAT_STALE_SECONDS + 5)
    assert store.get(proj, "r1").state == "lost"


def test_a_resumed_run_starts_a_new_life(proj, sleeper):
    """After a stop, a `started` event wipes the old terminal state: the run is running again."""
    events = TRAINED[:3] + [ev.Finished(reason="stopped", step=5), ev.Started(pid=2, resumed_from="checkpoint-5"),
                            ev.Log(step=6, total_steps=10, loss=1.4)]
    make_run(proj, "r1", events, pid=sleeper, heartbeat_age=0)
    info = store.get(proj, "r1")
    assert (info.state, info.step, info.last_loss) == ("running", 6, 1.4)


def test_a_just_spawned_worker_is_starting_not_lost(proj, sleeper):
    """No heartbeat yet (the worker is still importing torch): the fresh pid file vouches for it."""
    make_run(proj, "r1", [], pid=sleeper)
    info = store.get(proj, "r1")
    assert (info.state, info.alive) == ("starting", True)


def test_list_runs_and_unknown_run(proj):
    make_run(proj, "b", [ev.Finished(reason="completed")], pid=dead_pid())
    make_run(proj, "a", [ev.Error(message="x")], pid=dead_pid())
    (locations.runs_dir(proj) / "not-a-run").mkdir()
    assert [(r.id, r.state) for r in store.list_runs(proj)] == [("a", "failed"), ("b", "completed")]
    with pytest.raises(store.RunError, match="has no run 'zzz'"):
        store.get(proj, "zzz")
    with pytest.raises(store.RunError, match="is not running \\(state: completed\\)"):
        store.stop(proj, "b")
