"""One writer per run: two resumes at once, a paused worker, a killed one, and a storm of
resumes and stops from two processes. The run's lock (run.liveness) is what holds; these
tests drive the real worker on the tiny model and watch its processes through /proc."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.faults.conftest import cli, events, of_type, wait_for
from workbench import locations
from workbench.jobs import store
from workbench.run import events as ev
from workbench.run import layout, liveness

pytestmark = [pytest.mark.faults,
              pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads processes from /proc")]

REPO = Path(__file__).resolve().parents[2]
ENDLESS = ["--set", "max_steps=20000", "--set", "batch_size=2", "--set", "logging_steps=1", "--set", "eval_steps=0",
           "--set", "save_steps=10", "--set", "warmup=0"]


# helpers --------------------------------------------------------------------------------


def workers_holding(run_dir: Path) -> list[int]:
    """The worker processes of `run_dir` that have its lock file open, read from /proc."""
    try:
        lock = (run_dir / layout.LOCK).stat()
    except FileNotFoundError:
        return []
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
            if b"workbench.jobs.worker" not in args or str(run_dir).encode() not in args:
                continue
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.path.samestat(fd.stat(), lock):
                    found.append(int(proc.name))
                    break
            except OSError:
                continue
    return found


class Watch:
    """Samples the workers holding a run every few milliseconds, in a thread, until stopped; the
    pids in `ignored` (a worker started by hand, which opens the lock file only to find it held)
    are not counted."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir, self.most, self.seen, self.samples = run_dir, 0, set(), 0
        self.ignored: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            pids = set(workers_holding(self.run_dir)) - self.ignored
            self.most, self.samples = max(self.most, len(pids)), self.samples + 1
            self.seen.update(pids)
            self._stop.wait(0.02)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def check_lives(got: list[ev.Event]) -> list[ev.Started]:
    """Each life, from its `started`, ends with `finished` or `error` before the next one starts, by a
    worker of its own, with steps that only go up: what one writer at a time leaves. A worker stopped
    while it started leaves a `finished` (stopped) alone, between two lives."""
    lives: list[list[ev.Event]] = []
    for event in got:
        if isinstance(event, ev.Started):
            assert not lives or isinstance(lives[-1][-1], (ev.Finished, ev.Error)), \
                f"a life started while the one before had not ended: {[e.type for e in lives[-1]]}"
            lives.append([event])
        elif isinstance(event, ev.Finished) and event.reason == "stopped" and \
                (not lives or isinstance(lives[-1][-1], (ev.Finished, ev.Error))):
            lives.append([event])  # a worker stopped while it started: it ends before saying `started`
        else:
            assert lives, f"{event.type} before any `started`"
            assert not isinstance(lives[-1][-1], (ev.Finished, ev.Error)), f"{event.type} after the life ended"
            lives[-1].append(event)
    for life in lives:
        steps = [e.step for e in of_type(life, ev.Log)]
        assert steps == sorted(set(steps)), f"steps of one life went back: {steps}"
    starts = [life[0] for life in lives if isinstance(life[0], ev.Started)]
    assert len({s.pid for s in starts}) == len(starts), "two lives by one worker"
    return starts


def training(project: str) -> str:
    """A run that trains until stopped, once it has saved a checkpoint."""
    result = cli("train", project, *ENDLESS)
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.split()[0]
    wait_for(lambda: of_type(events(project, run_id), ev.Checkpoint), 180, "a checkpoint")
    return run_id


def stop_and_wait(project: str, run_id: str) -> store.RunInfo:
    result = cli("stop", project, run_id, "--wait")
    assert result.returncode == 0, result.stderr
    wait_for(lambda: not liveness.held(locations.run_dir(project, run_id)), 30, "the worker to let go of the run")
    return store.get(project, run_id)


# the faults -------------------------------------------------------------------------------


def test_two_resumes_at_once_start_one_worker(tiny_project):
    run_id = training(tiny_project)
    run_dir = locations.run_dir(tiny_project, run_id)
    assert stop_and_wait(tiny_project, run_id).state == "stopped"

    watch = Watch(run_dir)
    both = [subprocess.Popen([sys.executable, "-m", "workbench.cli", "resume", tiny_project, run_id],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO) for _ in range(2)]
    results = [(*proc.communicate(timeout=180), proc.returncode) for proc in both]
    assert sorted(rc for _, _, rc in results) == [0, 1], results
    pid = store.get(tiny_project, run_id).pid
    refused = next(err for _, err, rc in results if rc)
    assert f"Run {run_id} is already running (pid {pid})." in refused
    assert workers_holding(run_dir) == [pid]

    # a worker started by hand on the held run leaves at once, writing nothing
    size = (run_dir / layout.EVENTS).stat().st_size
    intruder = subprocess.Popen([sys.executable, "-m", "workbench.jobs.worker", str(run_dir), "--resume"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    watch.ignored.add(intruder.pid)
    _, said = intruder.communicate(timeout=60)
    assert intruder.returncode == 3 and f"Another worker (pid {pid}) is running" in said
    assert not [e for e in events(tiny_project, run_id) if isinstance(e, ev.Started) and e.pid == intruder.pid]
    assert liveness.read_pid(run_dir) == pid and workers_holding(run_dir) == [pid]

    wait_for(lambda: of_type(events(tiny_project, run_id)[-3:], ev.Log), 120, "the resumed worker to train")
    assert (run_dir / layout.EVENTS).stat().st_size > size
    info = stop_and_wait(tiny_project, run_id)
    watch.stop()
    assert info.state == "stopped" and watch.most == 1 and watch.seen >= {pid}
    starts = check_lives(events(tiny_project, run_id))
    assert [s.pid for s in starts][-1] == pid and len(starts) == 2  # the first life and the one resume


def test_a_paused_worker_is_stalled_not_lost_and_stop_reaches_it(tiny_project, monkeypatch):
    monkeypatch.setenv(liveness.STALE_ENV, "3")  # the worker beats every 0.75 s; readers wait 3 s
    run_id = training(tiny_project)
    run_dir = locations.run_dir(tiny_project, run_id)
    pid = store.get(tiny_project, run_id).pid
    os.kill(pid, signal.SIGSTOP)
    try:
        states = set()

        def stalled():
            info = store.get(tiny_project, run_id)
            states.add(info.state)
            return info.state == "stalled" and info

        info = wait_for(stalled, 30, "the stalled state")
        assert "lost" not in states and info.alive and not info.resumable and info.pid == pid
        assert info.stalled_for > 3 and f"no heartbeat for {info.stalled_for:.0f} s from pid {pid}" in info.message
        assert f"{run_id}\tsft\tstalled" in cli("runs", tiny_project).stdout

        refused = cli("resume", tiny_project, run_id)
        assert refused.returncode == 1 and f"Run {run_id} is already running (pid {pid})." in refused.stderr
        assert workers_holding(run_dir) == [pid]
        assert os.kill(pid, 0) is None and store.get(tiny_project, run_id).state == "stalled"  # still paused

        stopped = cli("stop", tiny_project, run_id, "--wait", timeout=180)  # SIGTERM, then SIGCONT
        assert stopped.returncode == 0, stopped.stderr
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    info = store.get(tiny_project, run_id)
    assert (info.state, info.alive, info.resumable) == ("stopped", False, True)
    got = events(tiny_project, run_id)
    assert of_type(got, ev.Finished)[-1].reason == "stopped" and len(check_lives(got)) == 1
    wait_for(lambda: not workers_holding(run_dir), 30, "the worker to exit")


def test_a_killed_worker_is_lost_at_once_and_resumes_at_once(tiny_project):
    run_id = training(tiny_project)
    run_dir = locations.run_dir(tiny_project, run_id)
    pid = store.get(tiny_project, run_id).pid
    os.killpg(os.getpgid(pid), signal.SIGKILL)
    killed = time.monotonic()
    info = wait_for(lambda: (i := store.get(tiny_project, run_id)).state != "running" and i, 10, "a state")
    assert time.monotonic() - killed < liveness.HEARTBEAT_STALE_SECONDS / 4  # the lock went with the process
    assert (info.state, info.alive, info.resumable) == ("lost", False, True)

    result = cli("resume", tiny_project, run_id)
    assert result.returncode == 0, result.stderr
    again = store.get(tiny_project, run_id)
    assert again.pid != pid and workers_holding(run_dir) == [again.pid]
    assert stop_and_wait(tiny_project, run_id).state == "stopped"
    starts = [e for e in events(tiny_project, run_id) if isinstance(e, ev.Started)]
    assert [s.pid for s in starts] == [pid, again.pid]


STORM = """
import json, random, sys, time
from workbench.jobs import launch, store
project, run_id, seed, start, rounds, period = sys.argv[1:7]
rng, tally = random.Random(int(seed)), {"resumed": 0, "refused": 0, "stopped": 0, "not running": 0}
for r in range(int(rounds)):
    time.sleep(max(0.0, float(start) + r * float(period) - time.time()))
    if rng.random() < 0.5:
        try:
            launch.resume(project, run_id, wait_for_start=False)
            tally["resumed"] += 1
        except launch.LaunchError as exc:
            assert "is already running" in str(exc), exc
            tally["refused"] += 1
    else:
        try:
            store.stop(project, run_id)
            tally["stopped"] += 1
        except store.RunError as exc:
            tally["not running"] += 1
print(json.dumps(tally))
"""
ROUNDS, PERIOD = 50, 0.5


def test_a_storm_of_resumes_and_stops_from_two_processes_never_has_two_workers(tiny_project):
    run_id = training(tiny_project)
    run_dir = locations.run_dir(tiny_project, run_id)
    assert stop_and_wait(tiny_project, run_id).state == "stopped"

    watch = Watch(run_dir)
    began = time.time()
    start = began + 1.0  # both processes act at the same instants
    storm = [subprocess.Popen([sys.executable, "-c", STORM, tiny_project, run_id, str(seed), str(start), str(ROUNDS),
                               str(PERIOD)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
             for seed in (1, 2)]
    tallies = []
    for proc in storm:
        out, err = proc.communicate(timeout=ROUNDS * PERIOD + 60)
        assert proc.returncode == 0, err
        tallies.append(json.loads(out))
    if store.get(tiny_project, run_id).alive:
        store.stop(tiny_project, run_id)
    wait_for(lambda: not liveness.held(run_dir) and not store.get(tiny_project, run_id).alive, 120, "the last worker")
    watch.stop()

    assert watch.most == 1, f"{watch.most} workers held the run at once"
    assert sum(t["resumed"] for t in tallies) >= 2 and sum(t["refused"] for t in tallies) >= 1, tallies
    starts = check_lives(events(tiny_project, run_id))
    print(f"storm: {ROUNDS} rounds x 2 processes in {time.time() - began:.0f} s, {tallies}, "
          f"{len(watch.seen)} workers seen in {watch.samples} samples, {len(starts) - 1} resumed lives wrote events")
