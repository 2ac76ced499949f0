"""The measured side of the memory estimate: a run's real worker, started in the foreground, and the
peak memory the kernel recorded for it.

`peak(spec)` writes the spec into its run folder, runs `workbench.jobs.worker` as a plain child (not
detached: its parent must reap it to read its usage) and returns the worker's peak resident memory,
`ru_maxrss` as `os.wait4` reports it for that one process: the kernel's own high-water mark, not a
sample that could miss a short peak. On CUDA the peak GPU memory is what matters; the worker does not
report it, so this module measures host memory only (a GPU comparison needs the device's own counter).
Used by `bench/estimate.py` and the estimate's tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from workbench import locations
from workbench.run import events as ev
from workbench.run import layout
from workbench.run.spec import JobSpec


@dataclass
class Peak:
    run_dir: Path
    peak_bytes: int  # the worker's peak resident memory (VmHWM)
    state: str  # "completed", or the error the worker reported
    seconds: float


def peak(spec: JobSpec, timeout: float = 1800) -> Peak:
    """Run `spec`'s worker to its end in the foreground; its peak resident memory."""
    import time

    run_dir = locations.run_dir(spec.project, spec.id)
    run_dir.mkdir(parents=True, exist_ok=True)
    spec.save(run_dir)
    env = dict(os.environ)
    threads = str(spec.runtime.threads or 1)
    env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, TOKENIZERS_PARALLELISM="false",
               HF_HUB_DISABLE_PROGRESS_BARS="1")
    started = time.time()
    with open(run_dir / layout.STDERR, "ab") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "workbench.jobs.worker", str(run_dir)],
                                stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, env=env, cwd=run_dir)
    try:
        _, _, usage = wait4(proc.pid, timeout)
    except TimeoutError:
        proc.kill()
        proc.wait()
        raise
    proc.returncode = 0  # reaped above; keep Popen from waiting on it again
    ended = [e for e in ev.read_all(run_dir / layout.EVENTS) if isinstance(e, (ev.Finished, ev.Error))]
    state = "no end event"
    if ended:
        state = ended[-1].reason if isinstance(ended[-1], ev.Finished) else f"error: {ended[-1].message}"
    return Peak(run_dir, usage.ru_maxrss * 1024, state, time.time() - started)


def wait4(pid: int, timeout: float):
    """os.wait4 on `pid`, polling so that a hung worker ends in TimeoutError instead of blocking forever."""
    import time

    deadline = time.time() + timeout
    while True:
        got_pid, status, usage = os.wait4(pid, os.WNOHANG)
        if got_pid == pid:
            return got_pid, status, usage
        if time.time() > deadline:
            raise TimeoutError(f"The worker {pid} did not end within {timeout:.0f} s.")
        time.sleep(0.1)
