"""Out of memory, for a person: where it happened (the step, the batch's shape, the peak) and the one
change that fits, in this order, each skipped when it is already on or cannot apply:

1. half the micro-batch with twice the accumulation: the same effective batch, so the same run up to
   rounding (an odd batch takes its largest divisor below the half: 6 -> 3 x 2, 5 -> 1 x 5);
2. gradient checkpointing: the same numbers, activations recomputed in backward (slower);
3. qlora: adapters on a 4-bit base (a CUDA GPU only; from full or lora);
4. nothing of these is left: a smaller max_length, which cuts the longer records.

The worker retries by itself once (runtime `oom_retry`, on by default) with the first two, which
keep what the run learns; qlora and a shorter max_length change it, so they are offered, never taken
silently. Light: no torch import (an exception is recognised by its class name and message).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

GIB = 1024 ** 3
MAX_GRAD_ACCUM = 1024  # the bound of the `grad_accum` parameter
CHOSEN_FROM = ("batch_size", "grad_accum", "gradient_checkpointing", "mode", "max_length")


@dataclass
class Where:
    """What the trainer knew when memory ran out (the kit attaches it to the exception as `ATTR`)."""

    step: int = 0  # the step being computed; 0: before training began (the memory probe)
    rows: int = 0  # the failing batch's rows and tokens per row; 0 where unknown
    length: int = 0
    phase: str = "training"  # training | evaluation | memory probe | preparation (before any of these)
    params: dict[str, Any] = field(default_factory=dict)  # the resolved values of CHOSEN_FROM

    def describe(self) -> str:
        when = {"memory probe": "in the memory probe, before step 1",
                "evaluation": f"in the evaluation at step {self.step}",
                "preparation": "before training began"}.get(self.phase, f"at step {self.step}")
        batch = f" on a batch of {self.rows} x {self.length} tokens" if self.rows and self.length else ""
        return when + batch


ATTR = "workbench_oom"  # the attribute of an out-of-memory exception that holds its `Where`
RETRIED_ATTR = "workbench_oom_retried"  # ... and, on the retry's own failure, the change it had made


@dataclass
class Change:
    """The change that fits: the params it sets, what it says, and whether a retry may take it."""

    params: dict[str, Any]
    says: str
    retry: bool

    def assignments(self) -> str:
        return " ".join(f"--set {k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in self.params.items())


def is_oom(exc: BaseException) -> bool:
    """torch.OutOfMemoryError (CUDA's), a MemoryError, or any error whose message says out of memory."""
    return (type(exc).__name__ == "OutOfMemoryError" or isinstance(exc, MemoryError)
            or "out of memory" in str(exc).lower())


def where_of(exc: BaseException) -> Where | None:
    found = getattr(exc, ATTR, None)
    return found if isinstance(found, Where) else None


def smaller_batch(batch: int, accum: int) -> tuple[int, int] | None:
    """(micro-batch, accumulation) with the same product and the micro-batch at most half; None at 1."""
    divisor = next((d for d in range(batch // 2, 0, -1) if batch % d == 0), None)
    if divisor is None or accum * (batch // divisor) > MAX_GRAD_ACCUM:
        return None
    return divisor, accum * (batch // divisor)


def choose(params: dict[str, Any], device: str) -> Change | None:
    """The first change of the module's list that applies to these resolved `params` on `device`
    (cpu or cuda); None when the params say too little to choose (a method without a batch size)."""
    batch, accum = params.get("batch_size"), params.get("grad_accum", 1)
    if not isinstance(batch, int) or not isinstance(accum, int):
        return None
    split = smaller_batch(batch, accum)
    if split is not None:
        return Change({"batch_size": split[0], "grad_accum": split[1]},
                      f"batch_size {batch} -> {split[0]} and grad_accum {accum} -> {split[1]} "
                      f"(the same effective batch of {batch * accum})", retry=True)
    if params.get("gradient_checkpointing") is False:
        return Change({"gradient_checkpointing": True},
                      "gradient_checkpointing on (activations recomputed in backward: slower, the same numbers)",
                      retry=True)
    mode = params.get("mode")
    if mode in ("lora", "full") and device == "cuda":
        return Change({"mode": "qlora"}, "mode qlora (adapters on a 4-bit base: the least memory, slightly "
                      "different numbers)", retry=False)
    length = params.get("max_length")
    already = {"qlora": "qlora is on", "last_layer": "only the output head trains"}.get(
        mode, "qlora needs a CUDA GPU" if mode in ("lora", "full") else f"mode {mode} has no lighter form")
    on = ("batch_size is 1" if batch == 1 else "grad_accum is at its bound") + ", gradient_checkpointing is " + (
        "on" if "gradient_checkpointing" in params else "not an option")
    if isinstance(length, int) and length > 1:
        return Change({"max_length": length // 2},
                      f"max_length {length} -> {length // 2} ({on} and {already}: nothing else is left; "
                      f"longer records are cut)", retry=False)
    return Change({}, f"a smaller model or a larger device ({on} and {already})", retry=False)


def peak_text(host: int, gpu: int, gpu_total: int = 0, exc: BaseException | None = None) -> str:
    """`peak 78.2 of 79.1 GiB on the GPU, 2.0 GiB more asked for`: the process's peak (the GPU's when it
    used one, else its RAM), and what the failing allocation asked for when the error says so."""
    if gpu:
        text = f"peak {gpu / GIB:.1f}{f' of {gpu_total / GIB:.1f}' if gpu_total else ''} GiB on the GPU"
    else:
        text = f"peak {host / GIB:.1f} GiB of RAM" if host else "peak unknown"
    asked = re.search(r"[Tt]ried to allocate ([\d.]+ ?[KMGT]i?B)", str(exc or ""))
    return text + (f", {asked.group(1)} more asked for" if asked else "")


def message(where: Where, peak: str, change: Change | None, retried: str = "", offer_retry: bool = False) -> str:
    """The error's one message: where it ran out, the peak, and the change to make (or that was made)."""
    text = f"Out of memory {where.describe()} ({peak})."
    if retried:
        text += f" It had already been retried with {retried}."
    if change is None:
        return text + " Lower batch_size or max_length, raise grad_accum to keep the effective batch, " \
                      "or turn on gradient_checkpointing."
    text += f" Try {change.says}"
    text += f": `{change.assignments()}`." if change.params else "."
    if offer_retry and change.retry:
        text += " (The runtime setting oom_retry=true retries once by itself.)"
    return text


def note(where: Where, peak: str, change: Change, from_step: int = 0) -> str:
    """The line that says a retry is under way (from the checkpoint of `from_step`, 0: from the start):
    in the events (a status) and in job.toml's notes."""
    start = f"the checkpoint of step {from_step}" if from_step else "the start"
    return f"Out of memory {where.describe()} ({peak}): retrying once from {start} with {change.says}."
