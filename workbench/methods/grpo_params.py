"""Parameters of the methods that sample their own answers and learn from rewards: GRPO and RLOO.

The reward options are the library's (`workbench.rewards.library.OPTIONS`), declared here as
fields so the method form shows each with its help line, in the `rewards` group."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.methods.kit import common_params as common
from workbench.params import param
from workbench.rewards.library import OPTIONS

# GRPOConfig.loss_type values that trl 1.16's GRPOTrainer implements (luspo switches to sequence-level ratios).
GRPO_LOSS_TYPES = ("dapo", "grpo", "dr_grpo", "bnpo", "cispo", "sapo", "luspo", "vespo")
SCALE_REWARDS = ("group", "batch", "none")


def option(name: str) -> Any:
    """The form field of one reward option of the library."""
    o = OPTIONS[name]
    return param(o.default, o.help, min=o.min, max=o.max, choices=o.choices, group="rewards")


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


@dataclass
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
    scheduler: str = common.scheduler()
    weight_decay: float = common.weight_decay()
    lora_r: int = common.lora_r()
    lora_alpha: int = common.lora_alpha()
    lora_dropout: float = common.lora_dropout()
    target_modules: str = common.target_modules()
    use_dora: bool = common.use_dora()
    use_rslora: bool = common.use_rslora()
    quant_type: str = common.quant_type()
    double_quant: bool = common.double_quant()
    compute_dtype: str = common.compute_dtype()
    save_steps: int = common.save_steps()
    logging_steps: int = common.logging_steps()
    gradient_checkpointing: bool = common.gradient_checkpointing()


@dataclass
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
    format_pattern: str = option("format_pattern")
    answer_column: str = option("answer_column")
    numeric_tolerance: float = option("numeric_tolerance")
    regex: str = option("regex")
    json_fields: str = option("json_fields")
    xml_elements: str = option("xml_elements")
    length_min: int = option("length_min")
    length_max: int = option("length_max")
    length_unit: str = option("length_unit")
    tests_column: str = option("tests_column")
    code_timeout: float = option("code_timeout")
    code_memory_mb: int = option("code_memory_mb")


@dataclass
class RLOOParams(RLParams):
    beta: float = param(0.05, "KL penalty towards the starting model, added to the reward.", min=0, max=10,
                        group="method")
    reward_model: str = reward_model("The reward model that scores completions: run:<id> of a reward run, or a "
                                     "folder of a sequence-classification model.")
    reward_model_weight: float = reward_model_weight()
    rewards: str = rewards("")
    reward_file: str = reward_file()
    format_pattern: str = option("format_pattern")
    answer_column: str = option("answer_column")
    numeric_tolerance: float = option("numeric_tolerance")
    regex: str = option("regex")
    json_fields: str = option("json_fields")
    xml_elements: str = option("xml_elements")
    length_min: int = option("length_min")
    length_max: int = option("length_max")
    length_unit: str = option("length_unit")
    tests_column: str = option("tests_column")
    code_timeout: float = option("code_timeout")
    code_memory_mb: int = option("code_memory_mb")
