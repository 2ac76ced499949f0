"""The measured side of the memory estimate: a run's real worker, started in the foreground, and the
peak memory it recorded for itself.

`peak(spec)` writes the spec into its run folder, runs `workbench.jobs.worker` as a plain child and
returns the peak the worker reports in its `finished` event (`workbench.run.peaks`): its own VmHWM, the
kernel's high-water mark of its address space, not a sample that could miss a short peak, and on CUDA
the most its allocator reserved. Not the `ru_maxrss` of wait4: Linux folds the parent's high-water
mark into a child's at exec, so a test process larger than the worker would be measured instead of it.
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
    peak_bytes: int  # the worker's peak resident memory (VmHWM), 0 when it ended without saying
    peak_gpu_bytes: int  # the most its CUDA allocator reserved, 0 without CUDA
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
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise TimeoutError(f"The worker {proc.pid} did not end within {timeout:.0f} s.") from None
    ended = [e for e in ev.read_all(run_dir / layout.EVENTS) if isinstance(e, (ev.Finished, ev.Error))]
    if not ended:
        return Peak(run_dir, 0, 0, "no end event", time.time() - started)
    if isinstance(ended[-1], ev.Error):
        return Peak(run_dir, 0, 0, f"error: {ended[-1].message}", time.time() - started)
    last = ended[-1]
    return Peak(run_dir, last.peak_memory, last.peak_gpu_memory, last.reason, time.time() - started)
