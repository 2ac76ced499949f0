"""Parameters of the methods that sample their own answers and learn from rewards: GRPO and RLOO.

The reward options are the library's (`workbench.rewards.library.OPTIONS`), taken as fields
(`common.reward_options`) so the method form shows each with its help line, in the `rewards` group."""

from __future__ import annotations

from workbench.methods.kit import common_params as common
from workbench.params import Fields, param, paramclass

# GRPOConfig.loss_type values that trl 1.16's GRPOTrainer implements (luspo switches to sequence-level ratios).
GRPO_LOSS_TYPES = ("dapo", "grpo", "dr_grpo", "bnpo", "cispo", "sapo", "luspo", "vespo")
SCALE_REWARDS = ("group", "batch", "none")
REWARD_OPTIONS = common.reward_options(group="rewards")


def rewards(default: str):
    return param(default, "Rewards and weights: name[:weight],... from the library (format, exact, numeric, "
                          "regex, json, xml, length, code) or functions of the reward file.", group="rewards")


def reward_file():
    return param("", "A Python file of reward functions (TRL signature: prompts, completions, **columns); "
                     "a relative path is read from the project folder.", group="rewards")


def reward_model(help_: str):
    return param("", help_, group="rewards")


def reward_model_weight():
    return param(1.0, "Weight of the reward model's score in the total.", min=-100, max=100, group="rewards")


@paramclass
class RLParams:
    mode: str = common.mode()
    learning_rate: float = param(1e-5, "Step size of the optimiser (LoRA ~1e-5..1e-4, full ~1e-6..1e-5).",
                                 min=1e-8, max=1.0)
    epochs: float = param(1.0, "Passes over the prompts (ignored when max_steps > 0).", min=0.01, max=1000)
    max_steps: int = common.max_steps()
    batch_size: int = param(8, "Completions per device per step; batch x grad_accum must be a multiple of "
                               "num_generations.", min=1, max=4096)
    grad_accum: int = common.grad_accum()
    num_generations: int = param(4, "Completions sampled per prompt (the group whose rewards are compared).",
                                 min=2, max=256, group="method")
    max_completion_length: int = param(256, "Most tokens generated per completion.", min=1, max=131072,
                                       group="method")
    temperature: float = param(1.0, "Sampling temperature: higher gives more varied completions.", min=0.01, max=5,
                               group="method")
    warmup: float = param(0.0, "Warm-up: a ratio of total steps if below 1, else a number of steps.", min=0)
    _optimiser: Fields = common.OPTIMISER
    _lora: Fields = common.LORA
    _qlora: Fields = common.QLORA
    _schedule: Fields = common.SCHEDULE.without("eval_steps")
    _samples: Fields = common.samples(5, 2, "the completions of sample_count prompts, each reward's score, the "
                                            "total and the advantage,", "Free: the trainer sampled and scored them.")


@paramclass
class GRPOParams(RLParams):
    beta: float = param(0.0, "KL penalty towards the starting model; 0 loads no reference (less memory).",
                        min=0, max=10, group="method")
    loss_type: str = param("dapo", "How token losses add up: dapo (default), grpo, dr_grpo, bnpo; cispo, sapo, "
                                   "luspo, vespo are variants TRL offers.", choices=GRPO_LOSS_TYPES, group="method")
    scale_rewards: str = param("group", "Divide advantages by the reward std of the group, the batch, or none.",
                               choices=SCALE_REWARDS, group="method")
    rewards: str = rewards("format")
    reward_file: str = reward_file()
    reward_model: str = reward_model("Also score with a reward model: run:<id> of a reward run, or a folder "
                                     "of a sequence-classification model (empty: none).")
    reward_model_weight: float = reward_model_weight()
    _options: Fields = REWARD_OPTIONS


@paramclass
class RLOOParams(RLParams):
    beta: float = param(0.05, "KL penalty towards the starting model, added to the reward.", min=0, max=10,
                        group="method")
    reward_model: str = reward_model("The reward model that scores completions: run:<id> of a reward run, or a "
                                     "folder of a sequence-classification model.")
    reward_model_weight: float = reward_model_weight()
    rewards: str = rewards("")
    reward_file: str = reward_file()
    _options: Fields = REWARD_OPTIONS
