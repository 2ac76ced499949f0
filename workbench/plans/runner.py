"""The runner of a pipeline or a sweep: `python -m workbench.plans.runner PROJECT PLAN_ID [--resume]`.

Started in its own session, as the worker is, it outlives the UI. It launches the stages'
runs through `launch`, watches them through `store`, and appends what it does to the
plan's `events.jsonl`; it holds the plan folder's lock for its life, as a worker holds its
run's (one runner per plan), and `pid` and `heartbeat` say who it is and when it last beat.
A pipeline's stage starts from the previous stage's model and a stage that does not
complete ends the pipeline; a sweep's runs are independent, one at a time or one per GPU.
SIGTERM asks it to stop: the running stages save a checkpoint and stop. Resumed, it goes
on from the first stage not completed, resuming a stopped stage from its checkpoint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

from workbench import locations
from workbench.files import write_toml
from workbench.jobs import launch, store
from workbench.plans import sweeps
from workbench.plans.pipelines import (
    BASE,
    PREVIOUS,
    PipelineError,
    Plan,
    PlanInfo,
    RunnerFinished,
    RunnerStarted,
    RunnerStatus,
    StageEnded,
    StageStarted,
    load_plan,
    read_runner_events,
    status,
)
from workbench.registry.specs import make_spec
from workbench.run import events as ev
from workbench.run import layout, liveness

POLL_SECONDS = 0.5
ENDED = ("completed", "stopped", "failed", "lost")


# the person's side: start, stop, resume, wait -------------------------------------


def _spawn(plan: Plan, resume: bool, lock: liveness.Lock) -> subprocess.Popen:
    args = [sys.executable, "-m", "workbench.plans.runner", plan.project, plan.id] + \
        (["--resume"] if resume else [])
    return launch.spawn_detached(args, plan.path, dict(os.environ), lock)


def _running(plan: Plan, pid: int | None) -> PipelineError:
    return PipelineError(f"{plan.kind.capitalize()} run {plan.id} is already running{f' (pid {pid})' if pid else ''}.")


def _claim(plan: Plan) -> liveness.Lock:
    """The plan folder's lock, taken before its runner is spawned and handed over to it."""
    try:
        return liveness.claim(plan.path)
    except liveness.Held as held:
        raise _running(plan, held.pid) from None


def _wait_started(plan: Plan, proc: subprocess.Popen, offset: int, timeout: float = 60.0) -> None:
    tail = ev.JsonlTail(plan.path / layout.EVENTS)
    tail.offset = offset
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(d.get("type") == RunnerStarted.type for d in tail.read_dicts()):
            return
        if proc.poll() is not None:
            lines = (plan.path / layout.STDERR).read_text(errors="replace").strip().splitlines()
            raise launch.LaunchError(f"The runner exited at once: {lines[-1] if lines else 'no output'}")
        time.sleep(0.05)
    raise launch.LaunchError(f"The runner did not start within {timeout:.0f} s (see {plan.path / layout.STDERR}).")


def start(plan: Plan, wait_for_start: bool = True) -> Path:
    """Save the plan in its own folder and start its runner."""
    plan.path.mkdir(parents=True)
    with _claim(plan) as lock:
        plan.save()
        proc = _spawn(plan, resume=False, lock=lock)
    if wait_for_start:
        _wait_started(plan, proc, 0)
    return plan.path


def resume(project_name: str, plan_id: str, wait_for_start: bool = True) -> Path:
    """Start a new runner on a plan that ended without completing; race-free, as `launch.resume` is."""
    info = status(project_name, plan_id)
    if info.alive:
        raise _running(info.plan, liveness.holder(info.plan.path))
    with _claim(info.plan) as lock:
        info = status(project_name, plan_id, life=liveness.NOBODY)  # under the lock: no runner but ours
        if info.state == "completed":
            raise PipelineError(f"{info.plan.kind.capitalize()} run {plan_id} has completed; nothing to resume.")
        events = info.plan.path / layout.EVENTS
        offset = events.stat().st_size if events.exists() else 0
        proc = _spawn(info.plan, resume=True, lock=lock)
    if wait_for_start:
        _wait_started(info.plan, proc, offset)
    return info.plan.path


def stop(project_name: str, plan_id: str) -> PlanInfo:
    """Ask the runner to stop its running stages (each saves a checkpoint) and end `stopped`: SIGTERM
    to the process group of the process holding the plan's lock, stalled or not.

    With the runner gone (lost), the stages it left running are stopped directly."""
    info = status(project_name, plan_id)
    if info.alive:
        try:
            store.signal_holder(info.plan.path, f"{info.plan.kind.capitalize()} run {plan_id}")
            return info
        except store.RunError:
            pass
    orphans = [s for s in info.stages if s.run is not None and s.run.alive]
    if not orphans:
        raise PipelineError(f"{info.plan.kind.capitalize()} run {plan_id} is not running (state: {info.state}).")
    for stage in orphans:
        store.stop(project_name, stage.run_id)
    return info


def wait(project_name: str, plan_id: str, timeout: float | None = None, poll: float = POLL_SECONDS) -> PlanInfo:
    deadline = None if timeout is None else time.time() + timeout
    while True:
        info = status(project_name, plan_id)
        if not info.alive and info.state not in ("starting", "running"):
            return info
        if deadline is not None and time.time() > deadline:
            raise TimeoutError(f"Run {plan_id} still {info.state} after {timeout:.0f} s.")
        time.sleep(poll)


# the runner's side ---------------------------------------------------------------


@contextmanager
def _visible_gpu(gpu: str | None):
    """Launch with CUDA_VISIBLE_DEVICES set to one GPU (the worker inherits the environment)."""
    if gpu is None:
        yield
        return
    old = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = old


class Runner:
    def __init__(self, plan: Plan, writer: ev.EventWriter, known: dict[int, str]):
        self.plan, self.writer = plan, writer
        self.known = known  # stage -> its latest run, from earlier lives
        self.stopping = False
        self._stop_sent: set[str] = set()

    def emit(self, event: ev.Event) -> None:
        self.writer.emit(event, sync=True)

    def request_stop(self) -> None:
        self.stopping = True

    def where(self, index: int) -> str:
        stage = self.plan.stages[index]
        if self.plan.kind == "sweep":
            return f"Run {index + 1} ({sweeps.describe_point(self.plan.point(index))})"
        return f"Stage {index + 1} ({stage.method})"

    # one stage's run

    def ensure(self, index: int, base: str | None, gpu: str | None) -> tuple[str, bool]:
        """(run id, already completed): the stage's run from an earlier life, resumed or watched, else a new one."""
        run_id = self.known.get(index)
        if run_id:
            try:
                info = store.get(self.plan.project, run_id)
            except store.RunError:
                info = None
            if info is not None and info.state == "completed":
                return run_id, True
            if info is not None and info.alive:
                self.emit(StageStarted(stage=index, run_id=run_id, action="watched", gpu=gpu or ""))
                return run_id, False
            if info is not None and info.resumable:
                with _visible_gpu(gpu):
                    launch.resume(self.plan.project, run_id)
                self.emit(StageStarted(stage=index, run_id=run_id, action="resumed", gpu=gpu or ""))
                return run_id, False
        return self.launch_new(index, base, gpu), False

    def launch_new(self, index: int, base: str | None, gpu: str | None) -> str:
        stage = self.plan.stages[index]
        spec = make_spec(self.plan.project, stage.method, dict(stage.values),
                                datasets=stage.datasets or None, base=base)
        label = f"{self.plan.kind} '{self.plan.name}' ({self.plan.id})"
        spec.notes.append(f"{self.where(index)} of {len(self.plan.stages)} of {label}; starts from {spec.base_ref}.")
        if gpu is not None:
            spec.notes.append(f"Run with CUDA_VISIBLE_DEVICES={gpu}.")
        run_dir = locations.run_dir(self.plan.project, spec.id)  # reserved by make_spec
        run_dir.mkdir(parents=True, exist_ok=True)
        write_toml(run_dir / layout.PIPELINE, {"pipeline": {
            "plan": self.plan.id, "kind": self.plan.kind, "name": self.plan.name,
            "stage": index + 1, "stages": len(self.plan.stages)}})
        with _visible_gpu(gpu):
            launch.start(spec)
        self.known[index] = spec.id
        self.emit(StageStarted(stage=index, run_id=spec.id, action="started", gpu=gpu or ""))
        return spec.id

    def poll(self, run_id: str) -> store.RunInfo | None:
        """The run's final state once it has ended; None while it runs (asked to stop when stopping)."""
        info = store.get(self.plan.project, run_id)
        if not info.alive and info.state in ENDED:
            return info
        if self.stopping and run_id not in self._stop_sent:
            self._stop_sent.add(run_id)
            try:
                store.stop(self.plan.project, run_id)
            except store.RunError:
                pass
        return None

    def could_not_start(self, index: int, exc: Exception) -> str:
        message = f"{self.where(index)} could not start: {str(exc).splitlines()[0] if str(exc) else exc!r}"
        self.emit(StageEnded(stage=index, state="failed", message=message))
        return message

    # a pipeline: one stage after another

    def run_pipeline(self) -> RunnerFinished:
        previous = ""
        for index, stage in enumerate(self.plan.stages):
            if self.stopping:
                return RunnerFinished(state="stopped", stage=index, message=f"Stopped before {self.where(index)}.")
            ref = stage.base_for(index)
            base = f"run:{previous}" if ref == PREVIOUS else None if ref == BASE else ref
            try:
                run_id, done = self.ensure(index, base, None)
            except Exception as exc:  # noqa: BLE001 - any reason a stage cannot start ends the pipeline
                return RunnerFinished(state="failed", stage=index, message=self.could_not_start(index, exc))
            info = None if done else self.poll(run_id)
            while not done and info is None:
                time.sleep(POLL_SECONDS)
                info = self.poll(run_id)
            if info is not None:
                self.emit(StageEnded(stage=index, run_id=run_id, state=info.state, message=info.message))
                if info.state != "completed":
                    state = "stopped" if info.state == "stopped" else "failed"
                    return RunnerFinished(state=state, stage=index,
                                          message=f"{self.where(index)} {info.state}: {info.message}")
            previous = run_id
        return RunnerFinished(state="completed", message=f"All {len(self.plan.stages)} stages completed.")

    # a sweep: independent runs, one per free slot

    def run_sweep(self) -> RunnerFinished:
        slots = sweeps.gpu_slots(self.plan.parallel, sweeps.visible_gpus())
        if self.plan.parallel > 1:
            self.emit(RunnerStatus(message=sweeps.describe_slots(slots, self.plan.parallel)))
        queue, free = list(range(len(self.plan.stages))), list(slots)
        active: dict[int, tuple[str, str | None]] = {}
        ended: dict[int, tuple[str, str]] = {}  # stage -> (state, message)
        while True:
            while queue and free and not self.stopping:
                index, slot = queue.pop(0), free.pop(0)
                stage = self.plan.stages[index]
                try:
                    run_id, done = self.ensure(index, None if stage.base in ("", BASE) else stage.base, slot)
                except Exception as exc:  # noqa: BLE001 - one run that cannot start does not end the sweep
                    ended[index] = ("failed", self.could_not_start(index, exc))
                    free.append(slot)
                    continue
                if done:
                    ended[index] = ("completed", "")
                    free.append(slot)
                else:
                    active[index] = (run_id, slot)
            for index, (run_id, slot) in list(active.items()):
                info = self.poll(run_id)
                if info is not None:
                    self.emit(StageEnded(stage=index, run_id=run_id, state=info.state, message=info.message))
                    ended[index] = (info.state, info.message)
                    del active[index]
                    free.append(slot)
            if not active and (not queue or self.stopping):
                break
            time.sleep(POLL_SECONDS)
        return self.sweep_result(ended)

    def sweep_result(self, ended: dict[int, tuple[str, str]]) -> RunnerFinished:
        total = len(self.plan.stages)
        completed = sum(state == "completed" for state, _ in ended.values())
        if self.stopping or any(state == "stopped" for state, _ in ended.values()):
            return RunnerFinished(state="stopped", message=f"Stopped with {completed} of {total} runs completed.")
        bad = sorted(i for i, (state, _) in ended.items() if state != "completed")
        if bad:
            state, message = ended[bad[0]]
            first = message if message.startswith(self.where(bad[0])) else f"{self.where(bad[0])} {state}: {message}"
            return RunnerFinished(state="failed", stage=bad[0],
                                  message=f"{len(bad)} of {total} runs did not complete. {first}")
        return RunnerFinished(state="completed", message=f"All {total} runs completed.")


def run(project_name: str, plan_id: str, resumed: bool) -> int:
    plan = load_plan(project_name, plan_id)
    try:
        lock = liveness.hold(plan.path)  # before anything is written; released last, or by the kernel at exit
    except liveness.Held as held:
        print(f"Another runner{f' (pid {held.pid})' if held.pid else ''} is running {plan.path}; "
              "this one exits without touching it.", file=sys.stderr)
        return 3
    known = {e.stage: e.run_id for e in read_runner_events(plan.path) if isinstance(e, StageStarted)}
    writer = ev.EventWriter(plan.path / layout.EVENTS)
    beat_stop = liveness.announce(plan.path)
    runner = Runner(plan, writer, known)
    signal.signal(signal.SIGTERM, lambda *_: runner.request_stop())
    signal.signal(signal.SIGINT, lambda *_: runner.request_stop())
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})  # blocked by the launcher
    try:
        runner.emit(RunnerStarted(pid=os.getpid(), resumed=resumed))
        runner.emit(runner.run_sweep() if plan.kind == "sweep" else runner.run_pipeline())
        return 0
    except BaseException as exc:  # noqa: BLE001 - the person must learn why the runner ended
        traceback.print_exc(file=sys.stderr)
        runner.emit(RunnerFinished(state="failed", message=f"The runner failed: {exc}"))
        return 1
    finally:
        beat_stop.set()
        sys.stderr.flush()
        writer.close()
        lock.release()  # the final event is written: a resume may start at once


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2:
        print("usage: python -m workbench.plans.runner PROJECT PLAN_ID [--resume]", file=sys.stderr)
        return 2
    return run(argv[0], argv[1], resumed="--resume" in argv[2:])


if __name__ == "__main__":
    sys.exit(main())
