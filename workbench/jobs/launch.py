"""Start a worker for a run, detached from whoever started it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from workbench import locations, methods
from workbench import project as projects
from workbench.data.mixing import proportional_weights
from workbench.files import write_atomic
from workbench.jobs import events as ev
from workbench.jobs.context import latest_checkpoint
from workbench.jobs.spec import DataSource, JobSpec, Runtime, default_threads
from workbench.methods import params as params_mod

_children: list[subprocess.Popen] = []  # reaped by reap(), so finished workers leave no zombie
_children_lock = threading.Lock()  # the UI spawns and polls from worker threads


class LaunchError(RuntimeError):
    pass


def new_run_id(project_name: str, method: str) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{method}"
    run_id, n = base, 1
    while locations.run_dir(project_name, run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def make_spec(project_name: str, method_name: str, values: dict[str, Any] | None = None,
              datasets: list[str] | None = None, runtime: Runtime | None = None,
              mix: dict[str, float] | str | None = None, base: str | None = None) -> JobSpec:
    """Check everything that can be checked without loading a model, and build the spec.

    `mix` weighs the training datasets ({name: weight}, whose names also choose them, or
    "proportional"); without it each weighs its size, so the sets are simply concatenated.
    `base` names the starting model (see model_refs): `run:<id>` chains this run on another's result."""
    project = projects.load(project_name)
    named = bool(datasets)  # datasets named one by one: no eval sets unless named too
    if isinstance(mix, dict):
        if datasets and set(datasets) != set(mix):
            raise LaunchError("--dataset and --mix name different datasets; --mix alone is enough.")
        datasets = list(mix)
    method = methods.get(method_name)
    chosen = params_mod.build(method.params, {**project.defaults.get(method_name, {}), **(values or {})})
    train_sets = [project.dataset(n) for n in datasets] if datasets else \
        [d for d in project.datasets if d.split == "train"]
    if not train_sets:
        raise LaunchError(f"Project '{project_name}' has no training data yet: import a dataset first.")
    eval_sets = [] if named else [d for d in project.datasets if d.split == "eval"]
    for entry in train_sets + eval_sets:
        if entry.kind not in method.data_kinds and entry.kind != "mixed":
            raise LaunchError(f"Dataset '{entry.name}' holds {entry.kind} records; {method.title} needs "
                              f"{' or '.join(method.data_kinds)}.")

    weights = mix if isinstance(mix, dict) else proportional_weights({e.name: e.records for e in train_sets})

    def source(entry, weight=1.0):
        return DataSource(dataset=entry.name, file=str(project.path / entry.file), kind=entry.kind, weight=weight)

    from workbench.model_refs import RefError, resolve_ref

    try:
        base_model = resolve_ref(project_name, base) if base else project.base_model
    except RefError as exc:
        raise LaunchError(str(exc)) from None
    runtime = runtime or Runtime()
    if runtime.threads == 0:
        runtime.threads = default_threads()
    return JobSpec(
        id=new_run_id(project_name, method_name), project=project_name, method=method_name,
        base_model=base_model, base_ref=base or "base", params=vars(chosen),
        train=[source(e, weights[e.name]) for e in train_sets], eval=[source(e) for e in eval_sets], runtime=runtime,
    )


def _spawn(run_dir: Path, threads: int, resume: bool) -> subprocess.Popen:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    args = [sys.executable, "-m", "workbench.jobs.worker", str(run_dir)] + (["--resume"] if resume else [])
    return spawn_detached(args, run_dir, env)


def spawn_detached(args: list[str], folder: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start a process in its own session (it outlives the app and the SSH connection), its output in
    `folder/stderr.log`, its pid in `folder/pid`; `reap()` collects it once it ends, so it leaves no zombie."""
    with open(folder / "stderr.log", "ab") as stderr:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                                start_new_session=True, env=env, cwd=folder)
    with _children_lock:
        _children.append(proc)
    write_atomic(folder / "pid", f"{proc.pid}\n")
    return proc


def _events_size(run_dir: Path) -> int:
    path = run_dir / "events.jsonl"
    return path.stat().st_size if path.exists() else 0


def wait_started(run_dir: Path, proc: subprocess.Popen, offset: int = 0, timeout: float = 120.0) -> None:
    """Return once the worker has written `started` past `offset` (or raise if it died first)."""
    deadline = time.time() + timeout
    tail = ev.EventTail(run_dir / "events.jsonl")
    tail.offset = offset
    while time.time() < deadline:
        for event in tail.read_new():
            if isinstance(event, (ev.Started, ev.Error)):
                return
        if proc.poll() is not None:
            log = (run_dir / "stderr.log").read_text(errors="replace").strip().splitlines()
            raise LaunchError(f"The worker exited at once: {log[-1] if log else 'no output'}")
        time.sleep(0.05)
    raise LaunchError(f"The worker did not start within {timeout:.0f} s (see {run_dir / 'stderr.log'}).")


def start(spec: JobSpec, wait_for_start: bool = True) -> Path:
    run_dir = locations.run_dir(spec.project, spec.id)
    (run_dir / "checkpoints").mkdir(parents=True)
    spec.save(run_dir)
    proc = _spawn(run_dir, spec.runtime.threads, resume=False)
    if wait_for_start:
        wait_started(run_dir, proc)
    return run_dir


def resume(project_name: str, run_id: str, wait_for_start: bool = True) -> Path:
    from workbench.jobs import store

    info = store.get(project_name, run_id)
    if info.alive:
        raise LaunchError(f"Run {run_id} is still running (or already resuming).")
    if info.state == "completed":
        raise LaunchError(f"Run {run_id} has completed; start a new run to train further.")
    if latest_checkpoint(info.path) is None:
        raise LaunchError(f"Run {run_id} has no checkpoint to resume from.")
    spec = JobSpec.load(info.path)
    offset = _events_size(info.path)
    proc = _spawn(info.path, spec.runtime.threads, resume=True)
    if wait_for_start:
        wait_started(info.path, proc, offset)
    return info.path


def reap() -> None:
    with _children_lock:
        _children[:] = [proc for proc in _children if proc.poll() is None]
