"""Out of memory in a trainer, made nameable: `watch` records the shape of the batch each forward pass of
the trainer's model gets, and an out-of-memory error raised inside it leaves carrying a
`workbench.jobs.oom.Where` (the step, the batch's rows and tokens, the phase, the resolved params the
change is chosen from), which the worker turns into the message and, when it may, a retry.

A test-only fault lives here too, read in this one place: `WORKBENCH_FAULT=oom_at_step:N` raises a
real `torch.OutOfMemoryError` in the forward pass of training step N while the batch has more than one
row, so that a retry with a smaller micro-batch passes; `oom_at_step:N:once` raises it at step N of the
first training in this process only, whatever the batch (so that any retry passes).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any

from workbench.jobs.oom import ATTR, CHOSEN_FROM, Where, is_oom, where_of
from workbench.run.context import JobContext

FAULT_ENV = "WORKBENCH_FAULT"


_fired = []  # the faults of the `once` kind raised in this process


def fault() -> tuple[int, bool] | None:
    """(N, once) of `WORKBENCH_FAULT=oom_at_step:N[:once]`; None when no such fault is asked for."""
    kind, _, arg = os.environ.get(FAULT_ENV, "").partition(":")
    step, _, once = arg.partition(":")
    if kind != "oom_at_step" or not step.isdigit() or once not in ("", "once"):
        return None
    return int(step), once == "once"


def _shape(args: tuple, kwargs: dict) -> tuple[int, int] | None:
    """(rows, tokens per row) of a forward pass's input ids (or embeddings); None without them."""
    found = kwargs.get("input_ids")
    if found is None:
        found = args[0] if args and hasattr(args[0], "shape") else kwargs.get("inputs_embeds")
    shape = getattr(found, "shape", None)
    return (int(shape[0]), int(shape[1])) if shape is not None and len(shape) >= 2 else None


@contextmanager
def watch(trainer, job: JobContext, p: Any):
    """Around the memory probe, the training and the final evaluation of `trainer`."""
    import torch

    seen = [0, 0]
    asked = fault()

    def before(module, args, kwargs):
        shape = _shape(args, kwargs or {})
        if shape is not None:
            seen[:] = shape
        if asked is None or not (job.training and module.training and trainer.state.global_step + 1 == asked[0]):
            return
        step, once = asked
        if (seen[0] > 1 and not once) or (once and not _fired):
            _fired.append(step)
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate 2.00 GiB (injected by "
                                         f"{FAULT_ENV}=oom_at_step:{step}{':once' if once else ''}).")

    handle = trainer.model.register_forward_pre_hook(before, with_kwargs=True)
    try:
        yield
    except BaseException as exc:
        if is_oom(exc) and where_of(exc) is None:
            training = bool(getattr(trainer.model, "training", True))
            phase = "memory probe" if not job.training else "training" if training else "evaluation"
            step = trainer.state.global_step + (1 if phase == "training" else 0)
            setattr(exc, ATTR, Where(step=step, rows=seen[0], length=seen[1], phase=phase,
                                     params={k: getattr(p, k) for k in CHOSEN_FROM if hasattr(p, k)}))
        raise
    finally:
        handle.remove()
