"""Turn an exception from a run into a kind and one message a person can act on.

An exception class with a `kind` attribute (e.g. `export.ExportError`) is already written for a
person: its message is kept as it is, under that kind.
"""

from __future__ import annotations

from workbench.jobs import oom
from workbench.run import peaks
from workbench.run.context import JobContext


def humanize(exc: BaseException, job: JobContext | None = None) -> tuple[str, str]:
    """(kind, message); `job`, the run that failed, lets an out-of-memory name its step and the change
    that fits (`oom_message`)."""
    from workbench.data.errors import DataError
    from workbench.data.kinds import RecordProblem
    from workbench.models import ModelError
    from workbench.params import ParamError

    text = str(exc) or type(exc).__name__
    name = type(exc).__name__
    if oom.is_oom(exc):
        return "out_of_memory", oom_message(exc, job)
    if isinstance(exc, ModelError):
        return "missing_model", text
    if isinstance(exc, (RecordProblem, DataError)):
        return "bad_data", text
    if isinstance(exc, ParamError):
        return "bad_spec", text
    if isinstance(exc, FileNotFoundError):
        return "missing_file", text
    if isinstance(getattr(type(exc), "kind", None), str):
        return type(exc).kind, text
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", "The run was interrupted."
    return "error", f"{name}: {text} (details in stderr.log)"


def oom_where(exc: BaseException, job: JobContext | None) -> oom.Where:
    """Where the run ran out of memory: what the trainer attached (`methods.kit.oom`), else the step
    after the last one done (or before training) and the spec's own params."""
    found = oom.where_of(exc)
    if found is not None:
        return found
    if job is None or not job.training:
        return oom.Where(phase="preparation", params=dict(job.spec.params) if job else {})
    return oom.Where(step=job.last_step + 1, params=dict(job.spec.params))


def oom_change(where: oom.Where, job: JobContext | None) -> oom.Change | None:
    """The change that fits (`oom.choose`) on the run's device."""
    params = {**(job.spec.params if job else {}), **where.params}
    return oom.choose(params, job.spec.runtime.device if job else "cpu")


def oom_peak(exc: BaseException | None = None) -> str:
    """The peak for an out-of-memory message (`oom.peak_text`), with the GPU's size when one was used."""
    gpu, total = peaks.gpu_bytes(), 0
    if gpu:
        try:
            import torch

            total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
        except Exception:  # noqa: BLE001 - a figure, never the reason a message fails
            total = 0
    return oom.peak_text(peaks.host_bytes(), gpu, total, exc)


def oom_message(exc: BaseException, job: JobContext | None) -> str:
    """The out-of-memory message of `exc`: the step, the batch's shape, the peak and the change to make
    (after a retry: the change it had made, and the next one)."""
    where = oom_where(exc, job)
    offer = job is not None and not job.spec.runtime.oom_retry
    return oom.message(where, oom_peak(exc), oom_change(where, job), retried=getattr(exc, oom.RETRIED_ATTR, ""),
                       offer_retry=offer)
