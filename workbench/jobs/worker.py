"""The worker: `python -m workbench.jobs.worker RUN_DIR [--resume]`.

Started in its own session by `launch`, it outlives the UI and the SSH connection.
It runs the runner the spec names (`module:function`, called with the spec and a job
context): a training recipe, a sampler, a judge, any job that loads a model.
It holds the run's lock for its life (one worker per run: one started on a run another
worker holds exits at once, writing nothing), and writes `pid`, a `heartbeat` every few
seconds, the resolved `job.toml`, and one event per line in `events.jsonl`. SIGTERM asks
for a checkpoint and a clean stop.
A crash becomes an `error` event with a human message; the traceback goes to stderr
(which the launcher points at `stderr.log`). An out-of-memory in a trainer is retried once in this
process with a lighter setting that keeps what the run learns (`jobs.oom`, runtime `oom_retry`).
A spec that asks for several processes runs them under torchrun (`workbench.jobs.ranks`): this
worker keeps the lock and the heartbeat, and each rank runs `worker RUN_DIR --rank`, rank 0 alone
writing events and files.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from workbench.files import write_toml
from workbench.jobs import oom, ranks
from workbench.jobs.errors import humanize, oom_change, oom_peak
from workbench.run import events as ev
from workbench.run import disk, layout, liveness, peaks
from workbench.run.context import JobContext, StopRequested
from workbench.run.spec import JobSpec


def load_runner(runner: str) -> Callable[..., Any]:
    """The function a spec's `module:function` names: the one place a job's code is found by name."""
    module, _, func = runner.partition(":")
    return getattr(importlib.import_module(module), func)


def _resolve_runtime(spec: JobSpec, job: JobContext) -> None:
    """Fill in device, precision and threads from what this machine really has."""
    import torch

    runtime = spec.runtime
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        ranks.check(runtime)
    else:
        ranks.count(runtime)  # one process: also refuses GPUs or processes this machine lacks
    if runtime.threads > 0:  # the ranks of a CPU run share the worker's threads
        torch.set_num_threads(max(1, runtime.threads // world) if runtime.device == "cpu" else runtime.threads)
    else:
        runtime.threads = torch.get_num_threads()
    has_cuda = torch.cuda.is_available()
    if has_cuda and world > 1 and runtime.device != "cpu":  # "cuda" is this rank's GPU from here on
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if runtime.device == "auto":
        runtime.device = "cuda" if has_cuda else "cpu"
        if not has_cuda:
            spec.notes.append("No CUDA device: training on the CPU (use_cpu=True, bf16=False).")
    if runtime.device == "cuda" and not has_cuda:
        raise RuntimeError("The spec asks for device=cuda but no CUDA device is visible to this process.")
    if runtime.precision == "auto":
        if runtime.device == "cuda" and torch.cuda.is_bf16_supported():
            runtime.precision = "bf16"
        elif runtime.device == "cuda" and spec.params.get("mode") in ("lora", "qlora"):  # adapter modes
            runtime.precision = "fp16"  # adapters train in fp32 under fp16 autocast; the frozen base is fp16
            spec.notes.append("This GPU has no bf16: fp16 mixed precision, the adapters in fp32.")
        else:
            runtime.precision = "fp32"
            if runtime.device == "cpu":
                spec.notes.append("CPU training uses fp32 weights and no mixed precision.")
            elif spec.params.get("mode") is not None:  # weights that train cannot be fp16 under the grad scaler
                spec.notes.append("This GPU has no bf16 and the trained weights cannot be fp16: fp32 weights.")


def run(run_dir: Path, resume: bool, as_rank: bool = False) -> int:
    """Run the job of `run_dir`; `as_rank`: as one rank of a multi-process run (see `workbench.jobs.ranks`),
    whose launcher-side worker holds the lock and beats, and whose rank 0 alone writes."""
    run_dir = Path(run_dir).resolve()
    rank = int(os.environ.get("RANK", "0")) if as_rank else 0
    lock = None
    if not as_rank:
        try:
            lock = liveness.hold(run_dir)  # before anything is written; released last, or by the kernel at exit
        except liveness.Held as held:
            print(f"Another worker{f' (pid {held.pid})' if held.pid else ''} is running {run_dir}; "
                  "this one exits without touching it.", file=sys.stderr)
            return 3
        group = _several_processes(run_dir)
        if group is not None:
            beat_stop = liveness.announce(run_dir)
            try:
                return ranks.supervise(run_dir, group[0], group[1], resume)
            finally:
                beat_stop.set()
                lock.release()
    writer = ev.EventWriter(run_dir / layout.EVENTS, enabled=rank == 0, reserve=rank == 0)
    beat_stop = liveness.announce(run_dir) if not as_rank else threading.Event()
    job: JobContext | None = None
    early_stop = False

    def on_stop(*_) -> None:
        nonlocal early_stop
        if job is not None:
            job.request_stop()
        elif not early_stop:  # before the job exists there is nothing to save: stop at once
            early_stop = True
            raise StopRequested()

    try:
        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        # A launcher may start the worker with these blocked, so that a stop sent while the interpreter
        # was starting waited instead of killing it: the handler takes it now.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
        spec = JobSpec.load(run_dir)
        checkpoint = layout.latest_checkpoint(run_dir) if resume else None
        if resume and checkpoint is None:
            raise FileNotFoundError("This run has no complete checkpoint to resume from.")
        job = JobContext(spec=spec, run_dir=run_dir, writer=writer, stop_requested=early_stop,
                         resume_checkpoint=str(checkpoint) if checkpoint else None)
        writer.emit(ev.Started(pid=os.getpid(), method=spec.method,
                               resumed_from=job.resume_checkpoint), sync=True)
        job.status("Loading the libraries")
        if not spec.runner:
            raise ValueError("The job's spec names no runner (job.toml [job] runner = \"module:function\").")
        runner = load_runner(spec.runner)
        _resolve_runtime(spec, job)
        job.check_stop()
        if rank == 0:
            spec.save(run_dir)
        output = _run_with_retry(runner, spec, job, as_rank)
        job.closing = True  # from here a stop is a flag: the final files and event are written whole
        if rank == 0:
            spec.save(run_dir)  # the method may have resolved more (model path, notes)
        memory = {"peak_memory": peaks.host_bytes(), "peak_gpu_memory": peaks.gpu_bytes()}
        if job.stop_requested:
            writer.emit(ev.Finished(reason="stopped", step=job.last_step, **memory), sync=True)
            return 0
        if rank == 0:
            write_toml(run_dir / layout.RESULT, {"result": {
                "finished": time.time(), "step": job.last_step, "output": str(output or ""), **memory}})
        writer.emit(ev.Finished(reason="completed", step=job.last_step, output=str(output or ""), **memory),
                    sync=True)
        return 0
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the person
        if job is not None:
            job.closing = True
        if isinstance(exc, StopRequested) or (job.ended_by_stop(exc) if job is not None else early_stop):
            if not isinstance(exc, StopRequested):
                print("A stop interrupted the preparation; the run ends as stopped. What it broke:", file=sys.stderr)
                traceback.print_exc(file=sys.stderr)
            writer.emit(ev.Finished(reason="stopped", step=job.last_step if job else 0), sync=True)
            return 0
        traceback.print_exc(file=sys.stderr)
        if disk.is_no_space(exc):
            kind, message = disk.DiskFull.kind, disk.stopped_message(run_dir, exc, job.last_step if job else 0)
        else:
            kind, message = humanize(exc, job)
        writer.emit(ev.Error(message=message, kind=kind), sync=True)
        return 1
    finally:
        beat_stop.set()
        sys.stderr.flush()
        writer.close()
        if lock is not None:
            lock.release()  # the final event is written: a resume may start at once


def _run_with_retry(runner: Callable[..., Any], spec: JobSpec, job: JobContext, as_rank: bool) -> Any:
    """The runner's output. After an out-of-memory in a trainer (one process; runtime `oom_retry`), once
    more in this process with the change that fits when it keeps what the run learns (`jobs.oom`): the
    same run folder and events, the trainer rebuilt with the new values, resumed from the latest
    checkpoint (the effective batch is the same), the change said in a status and in job.toml's notes."""
    try:
        return runner(spec, job)
    except BaseException as exc:  # re-raised unless it is an out-of-memory to retry
        where = oom.where_of(exc) if oom.is_oom(exc) else None
        change = oom_change(where, job) if where is not None else None
        if (change is None or not change.retry or not spec.runtime.oom_retry or as_rank
                or job.stop_requested or int(os.environ.get("WORLD_SIZE", "1")) > 1):
            raise
        traceback.print_exc(file=sys.stderr)
        checkpoint = layout.latest_checkpoint(job.run_dir)
        line = oom.note(where, oom_peak(exc), change, layout.checkpoint_step(checkpoint) if checkpoint else 0)
    _free_memory()  # outside the handler: the traceback that held the trainer is gone
    spec.params.update(change.params)
    spec.notes.append(line)
    spec.save(job.run_dir)
    job.status(f"Warning: {line}")
    job.training, job.last_eval_step = False, -1
    job.resume_checkpoint = str(checkpoint) if checkpoint else None
    try:
        return runner(spec, job)
    except BaseException as exc:
        if oom.is_oom(exc):
            setattr(exc, oom.RETRIED_ATTR, change.says)
        raise


def _free_memory() -> None:
    """What the failed attempt held, returned: Python's cycles collected, CUDA's cache emptied and its
    peak reset (the run's final peak is the retry's)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _several_processes(run_dir: Path) -> tuple[JobSpec, int] | None:
    """(spec, processes) when the spec asks for several processes on this machine, its count and the
    reason recorded in it; None for one process (or a spec that cannot run: the run reports why). The
    chosen GPUs (`gpus`) are this process's from here, before anything asks CUDA."""
    try:
        spec = JobSpec.load(run_dir)
        os.environ.update(ranks.gpu_env(spec.runtime))
        processes, why = ranks.count(spec.runtime)
    except Exception:  # noqa: BLE001 - the one-process path reports a bad spec as the run's error
        return None
    if processes <= 1:
        return None
    spec.runtime.processes = processes
    note = f"Runs under torchrun on {why}, rank 0 writing events."
    if note not in spec.notes:
        spec.notes.append(note)
    spec.save(run_dir)
    return spec, processes


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print("usage: python -m workbench.jobs.worker RUN_DIR [--resume] [--rank]", file=sys.stderr)
        return 2
    return run(Path(argv[0]), resume="--resume" in argv[1:], as_rank="--rank" in argv[1:])


if __name__ == "__main__":
    sys.exit(main())
