"""Start a job's process, detached from whoever started it.

A job is a folder holding its spec (`job.toml`); `start` spawns the worker on it, which
runs the runner the spec names (a training recipe, a sampler, an export...). The worker
starts in its own session: it outlives the app and the SSH connection. One worker at a time:
the launcher takes the folder's lock before it spawns the worker and hands it over, and the
worker keeps it for its life (run.liveness), so a second start or resume is refused.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from workbench import locations
from workbench.jobs import store
from workbench.jobs.claims import (  # noqa: F401 - the launcher's errors and claims, used from here
    EXIT_PATIENCE_SECONDS,
    LaunchError,
    already_running,
    claim,
    claim_after_exit,
)
from workbench.run import events as ev
from workbench.run import layout, liveness
from workbench.run.spec import JobSpec

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def new_run_id(project_name: str, method: str) -> str:
    return new_job_id(locations.runs_dir(project_name), method)


def new_job_id(parent: Path, kind: str) -> str:
    """`<date>-<time>-<kind>`, with `-2`, `-3`... when `parent` already has a folder of that name.

    The id is reserved by making its (empty) folder, which only one process can do: two jobs
    started in the same second get two ids. `start` then fills the folder."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{kind}"
    Path(parent).mkdir(parents=True, exist_ok=True)
    job_id, n = base, 1
    while True:
        try:
            (Path(parent) / job_id).mkdir()
            return job_id
        except FileExistsError:
            n += 1
            job_id = f"{base}-{n}"


def _spawn(run_dir: Path, threads: int, resume: bool, lock: liveness.Lock) -> subprocess.Popen:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    args = [sys.executable, "-m", "workbench.jobs.worker", str(run_dir)] + (["--resume"] if resume else [])
    return spawn_detached(args, run_dir, env, lock)


def spawn_detached(args: list[str], folder: Path, env: dict[str, str],
                   lock: liveness.Lock | None = None) -> subprocess.Popen:
    """Start a process in its own session (it outlives the app and the SSH connection), its output in
    `folder/stderr.log`, its pid in `folder/pid`; `liveness.reap()` collects it once it ends.

    The process holds the folder's lock from its first instant: `lock`, this process's claim, is
    handed over (the caller closes its own handle afterwards), or one is claimed here (LaunchError
    when another process holds it). The process keeps it with `liveness.hold`."""
    check_links(folder)
    own = claim(folder, f"The job in {folder}") if lock is None else None
    lock = lock or own
    # The child starts with SIGTERM and SIGINT blocked and unblocks them once its handlers are in
    # place: a stop that comes while its interpreter starts waits for it, instead of killing it.
    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        with open(Path(folder) / layout.STDERR, "ab") as stderr:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                                    start_new_session=True, env={**env, liveness.LOCK_FD_ENV: str(lock.fd)},
                                    pass_fds=(lock.fd,), cwd=folder)
        liveness.track(proc, folder)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        if own is not None:
            own.close()
    return proc


def check_links(folder: Path) -> None:
    """Refuse to start a job whose folder holds a link leading out of the projects home (its events,
    its log or its checkpoints would be written there): LaunchError naming the link."""
    folder = Path(folder)
    entries = list(folder.iterdir()) if folder.is_dir() else []
    checkpoints = folder / layout.CHECKPOINTS
    if checkpoints.is_dir() and not checkpoints.is_symlink():
        entries += list(checkpoints.iterdir())
    for entry in entries:
        if entry.is_symlink():
            try:
                locations.inside_home(entry)
            except locations.OutsideHome as exc:
                raise LaunchError(str(exc)) from None


def events_size(folder: Path) -> int:
    path = Path(folder) / layout.EVENTS
    return path.stat().st_size if path.exists() else 0


def wait_started(run_dir: Path, proc: subprocess.Popen, offset: int = 0, timeout: float = 120.0) -> None:
    """Return once the worker has written `started` past `offset` (or raise if it died first)."""
    deadline = time.time() + timeout
    tail = ev.EventTail(run_dir / layout.EVENTS)
    tail.offset = offset
    while time.time() < deadline:
        for event in tail.read_new():
            if isinstance(event, (ev.Started, ev.Error, ev.Finished)):  # Finished alone: stopped while starting
                return
        if proc.poll() is not None:
            log = (run_dir / layout.STDERR).read_text(errors="replace").strip().splitlines()
            raise LaunchError(f"The worker exited at once: {log[-1] if log else 'no output'}")
        time.sleep(0.05)
    raise LaunchError(f"The worker did not start within {timeout:.0f} s (see {run_dir / layout.STDERR}).")


def start(spec: JobSpec, wait_for_start: bool = True, run_dir: Path | None = None) -> Path:
    """Write the spec in a new job folder (the run's, unless `run_dir` names another) and start its worker.

    The folder may exist already, as `new_job_id` reserved it; one that holds a spec is refused."""
    if not spec.runner:
        raise LaunchError(f"Job {spec.id} names no runner.")
    run_dir = Path(run_dir) if run_dir else locations.run_dir(spec.project, spec.id)
    if (run_dir / layout.SPEC).exists():
        raise LaunchError(f"{run_dir} already holds a job.")
    run_dir.mkdir(parents=True, exist_ok=True)
    if spec.runtime.target == "slurm":  # its worker starts on the cluster's allocation (jobs.slurm)
        from workbench.jobs import slurm
        return slurm.start(spec, run_dir)
    with claim(run_dir, f"Job {spec.id}") as lock:
        spec.save(run_dir)
        proc = _spawn(run_dir, spec.runtime.threads, resume=False, lock=lock)
    if wait_for_start:
        wait_started(run_dir, proc)
    return run_dir


def resume(project_name: str, run_id: str, wait_for_start: bool = True) -> Path:
    """Start a new worker on a run that ended without completing, from its latest checkpoint. Race-free:
    the run's lock is taken first and its state read under it, so of two resumes at once one starts a
    worker and the other is refused."""
    info = store.get(project_name, run_id)
    if info.alive:
        raise already_running(f"Run {run_id}", liveness.holder(info.path))
    with claim_after_exit(info.path, f"Run {run_id}") as lock:
        info = store.read(info.path, liveness.NOBODY)  # under the lock: no worker but the one started here
        if info.state == "completed":
            raise LaunchError(f"Run {run_id} has completed; start a new run to train further.")
        if layout.latest_checkpoint(info.path) is None:
            raise LaunchError(f"Run {run_id} has no checkpoint to resume from.")
        spec = JobSpec.load(info.path)
        if not spec.runner:
            raise LaunchError(f"Run {run_id} was made before runs recorded their runner: start it again.")
        if spec.runtime.target == "slurm":  # a new Slurm job, which resumes from the checkpoint
            from workbench.jobs import slurm
            slurm.submit(spec, info.path)
            return info.path
        offset = events_size(info.path)
        proc = _spawn(info.path, spec.runtime.threads, resume=True, lock=lock)
    if wait_for_start:
        wait_started(info.path, proc, offset)
    return info.path

