"""Parameter fields that several methods share, declared once.

A function returns one fresh field (`mode`, `max_steps`, `grad_accum`); a `Fields` group
(`OPTIMISER`, `LORA`, `QLORA`, `SCHEDULE`, `reward_options`) is placed into a `@paramclass`
by name. Either way a method's params class lists its fields in its own order (the order of
its form) while the help, bounds and choices live here.
"""

from __future__ import annotations

from workbench.methods.kit import tracking
from workbench.params import Fields, param
from workbench.rewards.library import OPTIONS

SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup")


MODES = ("lora", "qlora", "full", "last_layer")
MODE_HELP = {
    "lora": "lora trains small adapter matrices",
    "qlora": "qlora trains them on a 4-bit base (CUDA and bitsandbytes only; least memory)",
    "full": "full updates every weight (most memory)",
    "last_layer": "last_layer trains the output head alone on a frozen base",
}


def mode(default: str = "lora", choices: tuple[str, ...] = MODES):
    """The training mode; a method that supports fewer modes passes its own `choices`."""
    return param(default, "; ".join(MODE_HELP[c] for c in choices) + ".", choices=choices, group="method")


def max_steps():
    return param(0, "Stop after this many optimiser steps; 0 lets epochs decide.", min=0)


def grad_accum():
    return param(1, "Steps whose gradients add up before one update (effective batch = batch x this).",
                 min=1, max=1024)


OPTIMISER = Fields(
    scheduler=param("cosine", "How the learning rate decays after warm-up.", choices=SCHEDULERS),
    weight_decay=param(0.0, "L2 penalty on weights (AdamW decoupled).", min=0, max=1),
)

LORA = Fields(
    lora_r=param(16, "LoRA rank: size of the adapter matrices.", min=1, max=1024, group="lora"),
    lora_alpha=param(32, "LoRA scaling numerator (scale = alpha / r).", min=1, max=4096, group="lora"),
    lora_dropout=param(0.05, "Dropout on the LoRA input.", min=0, max=0.9, group="lora"),
    target_modules=param("all-linear", "Layers that get adapters: all-linear, or names like q_proj,v_proj.",
                         group="lora"),
    use_dora=param(False, "DoRA: split each adapted weight into magnitude and direction (often better at low "
                   "rank, a little slower).", group="lora"),
    use_rslora=param(False, "Rank-stabilised LoRA: scale by alpha / sqrt(r) instead of alpha / r, so a high rank "
                     "still learns.", group="lora"),
)

QLORA = Fields(
    quant_type=param("nf4", "QLoRA: 4-bit number format of the frozen base (nf4 suits normally distributed "
                     "weights).", choices=("nf4", "fp4"), group="qlora"),
    double_quant=param(True, "QLoRA: quantise the quantisation constants too (saves ~0.4 bit per weight).",
                       group="qlora"),
    compute_dtype=param("bfloat16", "QLoRA: the dtype the 4-bit weights are unpacked to for each matmul.",
                        choices=("bfloat16", "float16", "float32"), group="qlora"),
)

SCHEDULE = Fields(
    eval_steps=param(20, "Evaluate every this many steps; 0 only at the end.", min=0, group="schedule"),
    save_steps=param(50, "Save a checkpoint every this many steps (and always when stopped).", min=1,
                     group="schedule"),
    logging_steps=param(1, "Report loss every this many steps.", min=1, group="schedule"),
    gradient_checkpointing=param(False, "Recompute activations in backward to save memory (slower).",
                                 group="schedule"),
    report_to=param("none", tracking.HELP, choices=tracking.CHOICES, group="schedule"),
)


def reward_options(group: str) -> Fields:
    """The options of the library rewards (`workbench.rewards.library.OPTIONS`), in the form group `group`."""
    return Fields(**{name: param(o.default, o.help, min=o.min, max=o.max, choices=o.choices, group=group)
                     for name, o in OPTIONS.items()})


def samples(every: int, count: int, what: str, cost: str) -> Fields:
    """How often a run writes `sample` events, which the monitor shows: `what` it shows of
    `sample_count` things, `cost` what that costs the run."""
    return Fields(
        sample_every=param(every, f"Show {what} at step 1 and every this many steps (0: never). {cost}",
                           min=0, max=1_000_000, group="schedule"),
        sample_count=param(count, "How many the monitor shows each time (see sample_every).", min=1, max=64,
                           group="schedule"),
    )
