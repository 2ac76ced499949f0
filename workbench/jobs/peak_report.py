"""A finished run's measured peak memory beside the estimate it was started with, in a few words.

The worker reports its peak when it ends (`workbench.run.peaks`: the `finished` event and
result.toml); the method form's estimate (`workbench.registry.estimate`) is kept in the spec at
launch (`JobSpec.estimate`). The two compare only on the same device: the estimate of a CPU run
is its RAM, of a GPU run the GPU's memory. Short enough for the monitor's figures at 80 columns.
Light: no torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.jobs.oom import GIB
from workbench.run import events as ev
from workbench.run.spec import JobSpec


def peak_figures(host: int, gpu: int, estimate: dict[str, Any] | None = None) -> str:
    """`1.2 GiB RAM (est. 1.1)`, `14.3 GiB GPU (est. 12.9)`: the peak (the GPU's when the run used
    one) and the estimate of that device when there is one; "" when the worker did not say."""
    if not host and not gpu:
        return ""
    text = f"{gpu / GIB:.1f} GiB GPU" if gpu else f"{host / GIB:.1f} GiB RAM"
    estimate = estimate or {}
    try:
        estimated = int(estimate.get("bytes", 0))
    except (TypeError, ValueError):
        estimated = 0
    if estimated > 0 and estimate.get("device") == ("cuda" if gpu else "cpu"):
        text += f" (est. {estimated / GIB:.1f})"
    return text


def run_peak(run_dir: Path, events: list[ev.Event]) -> str:
    """`peak_figures` of a run from its events (the last `finished`) and its spec's estimate; "" before
    it finished or when its worker did not say."""
    end = next((e for e in reversed(events) if isinstance(e, ev.Finished)), None)
    if end is None or not (end.peak_memory or end.peak_gpu_memory):
        return ""
    try:
        estimate = JobSpec.load(run_dir).estimate
    except (OSError, ValueError, KeyError, TypeError):
        estimate = {}
    return peak_figures(end.peak_memory, end.peak_gpu_memory, estimate)
