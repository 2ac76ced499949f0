"""Parameters of KTO: learning from single answers labelled good or bad (thumbs up / down)."""

from __future__ import annotations

from workbench.methods.kit import common_params as common
from workbench.params import Fields, param, paramclass

# KTOConfig.loss_type values that trl 1.16's KTOTrainer implements (tests check them against it).
KTO_LOSS_TYPES = ("kto", "apo_zero_unpaired")


@paramclass
class KTOParams:
    mode: str = common.mode(choices=("lora", "qlora", "full"))
    learning_rate: float = param(5e-5, "Step size of the optimiser (LoRA ~1e-5..1e-4, full ~1e-6..1e-5).",
                                 min=1e-8, max=1.0)
    epochs: float = param(1.0, "Passes over the labelled answers (ignored when max_steps > 0).", min=0.01, max=1000)
    max_steps: int = common.max_steps()
    batch_size: int = param(4, "Answers per device per step; at least 2, since KTO estimates its KL term by "
                               "pairing each prompt with another answer of the batch.", min=2, max=4096)
    grad_accum: int = common.grad_accum()
    max_length: int = param(512, "Tokens kept per prompt + answer; longer ones are truncated.", min=16,
                            max=131072)
    warmup: float = param(0.1, "Warm-up: a ratio of total steps if below 1, else a number of steps.", min=0)
    _optimiser: Fields = common.OPTIMISER
    _lora: Fields = common.LORA
    _qlora: Fields = common.QLORA
    beta: float = param(0.1, "How far the model may move from the reference (the base): higher stays closer.",
                        min=1e-4, max=10, group="method")
    loss_type: str = param("kto", "kto is the KTO loss; apo_zero_unpaired the unpaired APO-zero variant (no KL "
                                  "term).", choices=KTO_LOSS_TYPES, group="method")
    desirable_weight: float = param(1.0, "Weight of the good answers' loss; 0 = balance the two by their counts "
                                         "(KTO works best when good x weight is 1 to 4/3 of bad x weight).",
                                    min=0, max=100, group="method")
    undesirable_weight: float = param(1.0, "Weight of the bad answers' loss.", min=0.01, max=100, group="method")
    eval_fraction: float = param(0.1, "Share of the answers held out for eval when the project has no eval set.",
                                 min=0, max=0.5, group="schedule")
    _schedule: Fields = common.SCHEDULE
