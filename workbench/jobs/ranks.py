"""A run on several processes (DDP or FSDP): the worker's side that starts the ranks under torchrun.

The worker of a spec whose runtime asks for several processes (`processes`, 0: one per visible GPU,
one on the CPU; `gpus` picks the GPUs) does not train itself. It keeps what a worker keeps for the
run (the lock, its pid, the heartbeat) and runs the same worker once per rank under torchrun
(`python -m torch.distributed.run --standalone`), each rank started with `--rank`:

- rank 0 alone writes events, `job.toml` and `result.toml`; the other ranks' writers are off;
- a stop (SIGTERM to this process's group) reaches torchrun, which forwards it to every rank and
  gives them `SHUTDOWN_SECONDS` to save their checkpoint; the ranks agree on the step to stop at
  (`workbench.methods.kit.stop_sync`), so they save the same one;
- a rank that fails takes the others down (torchrun), and when rank 0 could not say why, this side
  writes the error event with the last line the ranks wrote to stderr.
Resume and reattach are those of a one-process run: the same folder, the same events.
How the ranks hold the model (`sharding`: auto, ddp or fsdp) is decided in the ranks
(`workbench.methods.kit.sharding`); this side only refuses a value that is none of `SHARDINGS`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from workbench.run import events as ev
from workbench.run import layout
from workbench.run.spec import JobSpec, Runtime

SHARDINGS = ("auto", "ddp", "fsdp")  # runtime.sharding: how the ranks hold the model
SHUTDOWN_SECONDS = 900  # how long torchrun lets the ranks save a checkpoint after a stop


class RanksError(ValueError):
    """A `processes` / `gpus` setting that cannot run; the message says why."""

    kind = "bad_spec"


def gpu_list(gpus: str) -> list[str]:
    """`"0,1"` -> `["0", "1"]`; a bad list raises RanksError."""
    found = [g.strip() for g in gpus.split(",") if g.strip()]
    if any(not g.isdigit() for g in found) or len(set(found)) != len(found):
        raise RanksError(f"gpus={gpus!r} is not a list of distinct GPU numbers such as 0,1.")
    return found


def check(runtime: Runtime) -> None:
    """Refuse a runtime whose processes and GPUs disagree, before anything is written."""
    if runtime.processes < 0:
        raise RanksError(f"processes={runtime.processes}: give a number of processes, or 0 for one per GPU.")
    gpus = gpu_list(runtime.gpus)
    if gpus and runtime.device == "cpu":
        raise RanksError("gpus= names GPUs but the run is on the CPU.")
    if gpus and runtime.processes > len(gpus):
        raise RanksError(f"processes={runtime.processes} on {len(gpus)} GPU(s) ({runtime.gpus}): one process a GPU.")
    if runtime.sharding not in SHARDINGS:
        raise RanksError(f"sharding={runtime.sharding!r} is unknown: it can be {', '.join(SHARDINGS)}.")


def gpu_env(runtime: Runtime) -> dict[str, str]:
    """The environment that puts a run on its chosen GPUs, numbered as `nvidia-smi` and the GPU panel
    number them (PCI bus order); empty when the run takes every visible GPU."""
    if not runtime.gpus or runtime.device == "cpu":
        return {}
    return {"CUDA_VISIBLE_DEVICES": ",".join(gpu_list(runtime.gpus)), "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


def check_machine(runtime: Runtime) -> None:
    """Refuse GPUs this machine does not have, and more processes than GPUs. Call it where the run's
    `gpu_env` is already in place: CUDA reads CUDA_VISIBLE_DEVICES once, and stops at a GPU it lacks."""
    gpus = gpu_list(runtime.gpus)
    if runtime.device == "cpu" or (not gpus and runtime.processes <= 1):
        return
    import torch

    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus and visible < len(gpus):
        raise RanksError(f"gpus={runtime.gpus}: " + (f"only {visible} of them exist" if visible else "no GPU is visible")
                         + " on this machine (`nvidia-smi -L` lists its GPUs).")
    if not gpus and visible and runtime.processes > visible:
        raise RanksError(f"processes={runtime.processes} but this machine shows {visible} GPU(s): one process a GPU. "
                         f"Ask for {visible} or fewer, or set device=cpu to run the ranks on the CPU.")


def count(runtime: Runtime) -> tuple[int, str]:
    """(processes, why) for this machine: as asked, else one per chosen or visible GPU, else one."""
    check(runtime)
    check_machine(runtime)
    gpus = gpu_list(runtime.gpus)
    if runtime.processes > 0:
        return runtime.processes, f"{runtime.processes} processes, as asked"
    if gpus:
        return len(gpus), f"one process per chosen GPU ({runtime.gpus})"
    if runtime.device == "cpu":
        return 1, "one process (CPU)"
    import torch

    visible = torch.cuda.device_count()
    return max(1, visible), (f"one process per visible GPU ({visible})" if visible > 1 else "one process")


def command(run_dir: Path, processes: int, resume: bool) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
            f"--shutdown-timeout={SHUTDOWN_SECONDS}", "--module", "workbench.jobs.worker", str(run_dir),
            "--rank", *(["--resume"] if resume else [])]


def environment(runtime: Runtime, processes: int) -> dict[str, str]:
    """The ranks' environment: the chosen GPUs, and on the CPU the worker's threads shared out."""
    env = {**os.environ, **gpu_env(runtime)}
    if runtime.device == "cpu" and runtime.threads > 0:
        per_rank = str(max(1, runtime.threads // processes))
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = per_rank
    return env


def supervise(run_dir: Path, spec: JobSpec, processes: int, resume: bool) -> int:
    """Run the ranks under torchrun and wait for them; the exit status of the run (0: completed or stopped)."""
    stopped = False

    def on_stop(*_) -> None:  # torchrun, in this process group, got the same signal and passes it on
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    size = (run_dir / layout.EVENTS).stat().st_size if (run_dir / layout.EVENTS).exists() else 0
    proc = subprocess.Popen(command(run_dir, processes, resume), env=environment(spec.runtime, processes),
                            stdin=subprocess.DEVNULL, cwd=run_dir)
    while True:
        try:
            code = proc.wait()
            break
        except InterruptedError:
            continue
    terminal = last_terminal(run_dir / layout.EVENTS, size)
    if code == 0 and terminal is not None:
        return 0
    if isinstance(terminal, ev.Error) or (stopped and isinstance(terminal, ev.Finished)):
        return 0 if isinstance(terminal, ev.Finished) else 1
    writer = ev.EventWriter(run_dir / layout.EVENTS)
    try:
        if stopped and terminal is None:
            writer.emit(ev.Finished(reason="stopped", step=0), sync=True)
            return 0
        writer.emit(ev.Error(message=f"A rank of this {processes}-process run failed (exit status {code}): "
                                     f"{last_line(run_dir / layout.STDERR)}", kind="error"), sync=True)
    finally:
        writer.close()
    return 1


def last_terminal(path: Path, offset: int) -> ev.Event | None:
    """The last `finished` or `error` event written past `offset`, or None."""
    tail = ev.EventTail(path)
    tail.offset = offset
    found = None
    for event in tail.read_new():
        if isinstance(event, (ev.Finished, ev.Error)):
            found = event
    return found


def last_line(path: Path) -> str:
    """The last line of the log that says something (torchrun's own summary lines left out)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "no output"
    said = [line.strip() for line in lines if line.strip() and not line.startswith(("W", "E", "[", "=", " "))]
    return said[-1] if said else (lines[-1].strip() if lines else "no output")
