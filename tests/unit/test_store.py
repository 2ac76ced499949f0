"""A run's state is derived from its files: the last terminal event, else the worker's liveness
(whether a process holds the run's lock, and how long its heartbeat has been silent)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench import locations
from workbench import project as projects
from workbench.jobs import launch, store
from workbench.run import events as ev
from workbench.run import liveness
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


_HELD: list[liveness.Lock] = []


def hold_here(folder: Path) -> None:
    """This test process holds the folder's lock, as a worker would, until the test ends."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    _HELD.append(liveness.claim(folder))


@pytest.fixture(autouse=True)
def release_held():
    """Closes the locks `hold_here` took (a module that calls it imports this fixture)."""
    yield
    while _HELD:
        _HELD.pop().close()


STAND_IN = """
import sys
from workbench.run import liveness
held = []
while line := sys.stdin.readline():
    held.append(liveness.hold(line.strip()))
    print("held", flush=True)
"""


class StandIn:
    """A live process in a session of its own, standing in for a worker or a runner: it holds the
    lock of each folder handed to it, until it is ended."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", STAND_IN], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, start_new_session=True, cwd=Path(__file__).resolve().parents[2])
        self.pid = self.proc.pid

    def hold(self, folder: Path) -> int:
        Path(folder).mkdir(parents=True, exist_ok=True)
        self.proc.stdin.write(f"{folder}\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "held"
        return self.pid

    def end(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()


@pytest.fixture
def holder():
    """Holds a folder's lock in a stand-in process of its own; its pid returned."""
    stand_ins: list[StandIn] = []

    def start(folder: Path) -> int:
        stand_ins.append(StandIn())
        return stand_ins[-1].hold(folder)

    yield start
    for stand_in in stand_ins:
        stand_in.end()


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


def test_live_worker_with_fresh_heartbeat_is_running(proj, holder):
    make_run(proj, "r1", TRAINED[:3], pid=holder(locations.run_dir(proj, "r1")), heartbeat_age=0)
    make_run(proj, "r2", [], pid=holder(locations.run_dir(proj, "r2")), heartbeat_age=0)
    assert (store.get(proj, "r1").state, store.get(proj, "r1").alive) == ("running", True)
    assert store.get(proj, "r2").state == "starting"


def test_a_live_pid_without_the_lock_is_lost(proj):
    """A reused pid with a fresh heartbeat: only the lock proves that a worker is in the run."""
    make_run(proj, "r1", TRAINED[:3], pid=os.getpid(), heartbeat_age=0, checkpoint=5)
    info = store.get(proj, "r1")
    assert (info.state, info.alive, info.resumable) == ("lost", False, True)


def test_a_silent_holder_is_stalled_not_lost_and_stop_still_reaches_it(proj, holder, monkeypatch):
    """Paused (SIGSTOP) or busy past the heartbeat window: still alive, so resume waits and stop
    reaches it (SIGTERM, then SIGCONT so that a stopped process takes it)."""
    monkeypatch.setenv(liveness.STALE_ENV, "5")
    pid = holder(locations.run_dir(proj, "r1"))
    make_run(proj, "r1", TRAINED[:3], pid=pid, heartbeat_age=42, checkpoint=5)
    os.kill(pid, signal.SIGSTOP)
    info = store.get(proj, "r1")
    assert (info.state, info.alive, info.resumable, info.pid) == ("stalled", True, False, pid)
    assert 41 <= info.stalled_for < 60 and "no heartbeat for 42 s" in info.message
    with pytest.raises(launch.LaunchError, match=f"Run r1 is already running \\(pid {pid}\\)"):
        launch.resume(proj, "r1", wait_for_start=False)
    store.stop(proj, "r1")
    ended = time.monotonic() + 10
    while liveness.held(locations.run_dir(proj, "r1")) and time.monotonic() < ended:
        time.sleep(0.02)
    info = store.get(proj, "r1")
    assert (info.state, info.alive, info.resumable) == ("lost", False, True)  # no final event: it had none to write


def test_the_window_follows_the_environment(monkeypatch):
    monkeypatch.setenv(liveness.STALE_ENV, "3")
    assert (liveness.stale_seconds(), liveness.beat_seconds()) == (3.0, 0.75)
    for bad in ("0", "-1", "nan", "inf", "soon"):
        monkeypatch.setenv(liveness.STALE_ENV, bad)
        assert liveness.stale_seconds() == liveness.HEARTBEAT_STALE_SECONDS


def test_one_claim_per_folder(tmp_path):
    """A second claim is refused while the first is held, and granted once it is released."""
    first = liveness.claim(tmp_path)
    with pytest.raises(liveness.Held):
        liveness.claim(tmp_path, patience=0.05)
    assert liveness.held(tmp_path)
    first.release()
    assert not liveness.held(tmp_path)
    liveness.claim(tmp_path).close()


def test_a_resumed_run_starts_a_new_life(proj, holder):
    """After a stop, a `started` event wipes the old terminal state: the run is running again."""
    events = TRAINED[:3] + [ev.Finished(reason="stopped", step=5), ev.Started(pid=2, resumed_from="checkpoint-5"),
                            ev.Log(step=6, total_steps=10, loss=1.4)]
    make_run(proj, "r1", events, pid=holder(locations.run_dir(proj, "r1")), heartbeat_age=0)
    info = store.get(proj, "r1")
    assert (info.state, info.step, info.last_loss) == ("running", 6, 1.4)


def test_a_just_spawned_worker_is_starting_not_lost(proj, holder):
    """No heartbeat yet (the worker is still importing torch): the fresh pid file vouches for it."""
    make_run(proj, "r1", [], pid=holder(locations.run_dir(proj, "r1")))
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
