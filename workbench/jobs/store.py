"""The runs of a project: their state read from files, and stopping them.

State is derived, never stored: the last `finished`/`error` event says how a worker
ended; otherwise the run's lock says whether a worker is in it (run.liveness). Held, it is
running, or stalled when its heartbeat has been silent for longer than the window (paused,
or busy in a long step or save: still alive, so stop reaches it and resume waits); free, the
worker was lost (killed, machine rebooted) and the run can be resumed from its checkpoint.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from workbench import locations
from workbench.files import read_toml
from workbench.run import events as ev
from workbench.run import layout, liveness
from workbench.run.spec import JobSpec


class RunError(RuntimeError):
    """A run that cannot be used as asked; the message says why, for a person."""

    kind = "bad_run"


@dataclass
class RunInfo:
    id: str
    path: Path
    method: str
    state: str  # starting | running | stalled | completed | stopped | failed | lost; on Slurm queued | cancelled
    alive: bool
    step: int = 0
    total_steps: int = 0
    last_loss: float | None = None
    last_eval_loss: float | None = None
    message: str = ""
    pid: int | None = None
    stalled_for: float = 0.0  # seconds since a stalled worker's last heartbeat
    created: str = ""
    slurm_job: str = ""  # the job id of a run sent to Slurm (jobs.slurm)
    events: list[ev.Event] = field(default_factory=list, repr=False)

    @property
    def resumable(self) -> bool:
        return not self.alive and self.state in ("stopped", "failed", "lost", "cancelled") and \
            layout.latest_checkpoint(self.path) is not None

    @property
    def output(self) -> Path | None:
        return layout.output(self.path)


_tails: dict[Path, tuple[ev.EventTail, list[ev.Event]]] = {}


def read_events(run_dir: Path) -> list[ev.Event]:
    """All events of a run, reading only the bytes appended since the last call."""
    path = Path(run_dir) / layout.EVENTS
    tail, events = _tails.get(path, (None, None))
    if tail is None or (path.exists() and path.stat().st_size < tail.offset):
        tail, events = ev.EventTail(path), []
        _tails[path] = (tail, events)
    events.extend(tail.read_new())
    return list(events)


def summarize(run_dir: Path, events: list[ev.Event], life: liveness.Life) -> RunInfo:
    run_dir = Path(run_dir)
    alive = life.alive
    try:
        spec = JobSpec.load(run_dir)
        method, created = spec.method, spec.created
    except (OSError, KeyError, ValueError):
        method, created = "?", ""
    info = RunInfo(id=run_dir.name, path=run_dir, method=method, state="starting", alive=alive,
                   pid=life.pid, created=created, events=events)
    terminal: ev.Event | None = None
    for event in events:
        if isinstance(event, ev.Started):
            terminal = None  # a resumed run starts a new life
        elif isinstance(event, ev.Log):
            info.step, info.total_steps = event.step, event.total_steps or info.total_steps
            if event.loss is not None:
                info.last_loss = event.loss
        elif isinstance(event, ev.TrainBegin):
            info.total_steps = event.total_steps
        elif isinstance(event, ev.Eval):
            info.last_eval_loss = event.loss
        elif isinstance(event, (ev.Finished, ev.Error)):
            terminal = event
        if isinstance(event, ev.Status):
            info.message = event.message
    started = any(isinstance(e, ev.Started) for e in events)
    if terminal is not None and alive and liveness.mtime(run_dir / layout.PID) > terminal.time:
        # resumed: a new worker is up but has not written `started` yet
        terminal, started = None, False
    if isinstance(terminal, ev.Finished):
        info.state = terminal.reason if terminal.reason in ("completed", "stopped") else "completed"
        info.step = max(info.step, terminal.step)
        info.message = "finished" if info.state == "completed" else "stopped; checkpoint saved"
    elif isinstance(terminal, ev.Error):
        info.state, info.message = "failed", terminal.message
    elif life.stalled:
        info.state, info.stalled_for = "stalled", life.silent
        who = f"pid {life.pid}" if life.pid else "the worker"
        info.message = (f"no heartbeat for {life.silent:.0f} s from {who} (paused, or busy in a long step "
                        "or save); it still holds the run: stop reaches it")
    elif alive:
        info.state = "running" if started else "starting"
    else:
        info.state = "lost"
        info.message = "the worker ended without a final event (killed?)"
    info.alive = alive and terminal is None
    return info


def read(folder: Path, life: liveness.Life | None = None) -> RunInfo:
    """The state of the job in `folder` (a run, or a job kept elsewhere, such as an export); `life`
    stands in for its lock's (a launcher holding the lock itself reads it as `liveness.NOBODY`)."""
    life = life or liveness.check(folder)  # before the events: a job that ended before this check wrote them all
    info = summarize(folder, read_events(folder), life)
    if (Path(folder) / layout.SLURM_JOB).exists():  # a Slurm run: not lost while Slurm holds its job
        from workbench.jobs import slurm
        slurm.follow_state(info)
    return info


def get(project_name: str, run_id: str) -> RunInfo:
    run_dir = locations.run_dir(project_name, run_id)
    if not (run_dir / layout.SPEC).exists():
        raise RunError(f"Project '{project_name}' has no run '{run_id}'.")
    return read(run_dir)


def list_runs(project_name: str) -> list[RunInfo]:
    folder = locations.runs_dir(project_name)
    if not folder.exists():
        return []
    runs = [get(project_name, d.name) for d in sorted(folder.iterdir()) if (d / layout.SPEC).exists()]
    return sorted(runs, key=lambda r: r.id)


def pipeline_of(run_dir: Path) -> dict:
    """{plan, kind, name, stage (1-based), stages} for a run a pipeline or a sweep started; {} otherwise."""
    try:
        return read_toml(Path(run_dir) / layout.PIPELINE).get("pipeline", {})
    except (OSError, ValueError):
        return {}


def stop(project_name: str, run_id: str) -> RunInfo:
    """Ask the worker to save a checkpoint and stop (SIGTERM to its process group)."""
    get(project_name, run_id)
    return stop_job(locations.run_dir(project_name, run_id), f"Run {run_id}")


def stop_job(folder: Path, what: str = "The job") -> RunInfo:
    """SIGTERM to the process group of the job in `folder` (of the process holding its lock); `what`
    names it in the errors."""
    info = read(folder)
    if not info.alive:
        raise RunError(f"{what} is not running (state: {info.state}).")
    if info.slurm_job and not liveness.is_alive(folder):  # on the cluster: through Slurm (jobs.slurm)
        from workbench.jobs import slurm
        info.message = slurm.stop(folder, info)
        return info
    signal_holder(folder, what)
    return info


def signal_holder(folder: Path, what: str = "The job") -> int:
    """SIGTERM to the process group of the process holding the lock of `folder`, then SIGCONT, so
    that a stopped (SIGSTOP) process wakes to take it; its pid returned. A launched process leads
    its own group; one that does not (started by hand) is signalled alone."""
    pid = liveness.holder(folder)
    if pid is None:
        raise RunError(f"{what} ended before it could be stopped.")
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGTERM)
            os.killpg(pid, signal.SIGCONT)
        else:
            os.kill(pid, signal.SIGTERM)
            os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        raise RunError(f"{what} ended before it could be stopped.") from None
    return pid


def wait(project_name: str, run_id: str, timeout: float | None = None, poll: float = 0.5) -> RunInfo:
    get(project_name, run_id)
    return wait_job(locations.run_dir(project_name, run_id), timeout, poll, f"Run {run_id}")


def wait_job(folder: Path, timeout: float | None = None, poll: float = 0.5, what: str = "The job") -> RunInfo:
    """The state of the job in `folder` once it has ended."""
    deadline = None if timeout is None else time.time() + timeout
    while True:
        info = read(folder)
        if not info.alive and info.state not in ("starting", "running"):
            return info
        if deadline is not None and time.time() > deadline:
            raise TimeoutError(f"{what} still {info.state} after {timeout:.0f} s.")
        time.sleep(poll)


@dataclass(frozen=True)
class ModelChoice:
    ref: str  # what a spec, a CLI flag or a form field holds (see run.model_refs)
    label: str  # what a person reads


def model_choices(project_name: str, methods: tuple[str, ...] = ("sft", "dpo", "grpo", "ppo", "distill")) -> list[ModelChoice]:
    """The models of a project a person can pick: the base, then each run's output and checkpoints."""
    out = [ModelChoice("base", "base model")]
    for info in list_runs(project_name):
        if methods and info.method not in methods:
            continue
        if info.state == "completed":
            out.append(ModelChoice(f"run:{info.id}", f"{info.id} ({info.method}, final)"))
        folders = reversed(layout.complete_checkpoints(info.path))
        out.extend(ModelChoice(f"run:{info.id}/{p.name}", f"{info.id} checkpoint {layout.checkpoint_step(p)}")
                   for p in folders)
    return out


def trained_weights(project_name: str, run_id: str) -> tuple[Path, bool]:
    """(folder with a run's trained weights, is_adapter): its final output, else its latest checkpoint."""
    info = get(project_name, run_id)
    if info.alive:
        raise RunError(f"Run {run_id} is still running; stop it or wait for it to finish.")
    folder = info.output or layout.latest_checkpoint(info.path)
    if folder is None:
        raise RunError(f"Run {run_id} has no trained weights yet (state: {info.state}).")
    return folder, (folder / "adapter_config.json").exists()
