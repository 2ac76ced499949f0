"""Parameters of the methods that learn from preference pairs: a reward model and DPO."""

from __future__ import annotations

from workbench.methods.kit import common_params as common
from workbench.params import Fields, param, paramclass

# DPOConfig.loss_type values that trl 1.16's DPOTrainer implements (tests check them against it).
DPO_LOSS_TYPES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
                  "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm")


def cut_answers():
    return param("drop", "Pairs preferring an answer the token limit cut when it was sampled: drop leaves them out "
                 "(raising the likelihood of an answer that stops mid-sentence teaches stopping there); keep trains "
                 "on them.", choices=("drop", "keep"), group="method")


@paramclass
class PairParams:
    mode: str = common.mode()
    learning_rate: float = param(5e-5, "Step size of the optimiser (LoRA ~1e-5..1e-4, full ~1e-6..1e-5).",
                                 min=1e-8, max=1.0)
    epochs: float = param(1.0, "Passes over the pairs (ignored when max_steps > 0).", min=0.01, max=1000)
    max_steps: int = common.max_steps()
    batch_size: int = param(4, "Pairs per device per step.", min=1, max=4096)
    grad_accum: int = common.grad_accum()
    max_length: int = param(512, "Tokens kept per prompt + answer; longer ones are truncated.", min=16,
                            max=131072)
    warmup: float = param(0.1, "Warm-up: a ratio of total steps if below 1, else a number of steps.", min=0)
    _optimiser: Fields = common.OPTIMISER
    _lora: Fields = common.LORA
    _qlora: Fields = common.QLORA
    eval_fraction: float = param(0.1, "Share of the prompts held out for eval when the project has no eval set.",
                                 min=0, max=0.5, group="schedule")
    _schedule: Fields = common.SCHEDULE


@paramclass
class RewardParams(PairParams):
    center_rewards: float = param(0.0, "Weight of a penalty that keeps rewards centred on zero (0 = off).",
                                  min=0, max=10, group="method")


@paramclass
class DPOParams(PairParams):
    beta: float = param(0.1, "How far the model may move from the reference: higher stays closer.",
                        min=1e-4, max=10, group="method")
    loss_type: str = param("sigmoid", "The preference loss: sigmoid is DPO; ipo, hinge, robust... are variants.",
                           choices=DPO_LOSS_TYPES, group="method")
    label_smoothing: float = param(0.0, "Assumed share of wrongly labelled pairs (robust / conservative DPO).",
                                   min=0, max=0.5, group="method")
    cut_answers: str = cut_answers()
    _samples: Fields = common.samples(10, 2, "sample_count training pairs with the policy's log-ratio to the "
                                             "reference for each answer", "Costs a no-grad forward of those pairs "
                                             "under both models: 2 pairs take about a quarter of a 4-pair step, "
                                             "under 3% of the run every 10 steps.")
