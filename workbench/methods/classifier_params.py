"""Parameters of a classification head on a base model (frozen by default)."""

from __future__ import annotations

from workbench.methods.kit import common_params as common
from workbench.params import Fields, param, paramclass

CLASSIFIER_MODES = ("last_layer", "lora", "full")


@paramclass
class ClassifierParams:
    mode: str = common.mode("last_layer", CLASSIFIER_MODES)
    learning_rate: float = param(1e-3, "Step size of the optimiser (head alone ~1e-3, LoRA ~1e-4, full ~2e-5).",
                                 min=1e-8, max=1.0)
    epochs: float = param(3.0, "Passes over the training data (ignored when max_steps > 0).", min=0.01, max=1000)
    max_steps: int = common.max_steps()
    batch_size: int = param(8, "Texts per device per step.", min=1, max=4096)
    grad_accum: int = common.grad_accum()
    max_length: int = param(512, "Tokens kept per text; longer texts are truncated.", min=8, max=131072)
    warmup: float = param(0.05, "Warm-up: a ratio of total steps if below 1, else a number of steps.", min=0)
    _optimiser: Fields = common.OPTIMISER
    _lora: Fields = common.LORA
    eval_fraction: float = param(0.1, "Share of the texts held out for eval accuracy when the project has no "
                                 "eval set.", min=0, max=0.5, group="schedule")
    _schedule: Fields = common.SCHEDULE
