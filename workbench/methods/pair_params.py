"""Parameters of the methods that learn from preference pairs: a reward model and DPO."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.methods.params import param

# DPOConfig.loss_type values that trl 1.16's DPOTrainer implements (tests check them against it).
DPO_LOSS_TYPES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
                  "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm")


@dataclass
class PairParams:
    mode: str = param("lora", "lora trains small adapter matrices; full updates every weight (more memory).",
                      choices=("lora", "full"), group="method")
    learning_rate: float = param(5e-5, "Step size of the optimiser (LoRA ~1e-5..1e-4, full ~1e-6..1e-5).",
                                 min=1e-8, max=1.0)
    epochs: float = param(1.0, "Passes over the pairs (ignored when max_steps > 0).", min=0.01, max=1000)
    max_steps: int = param(0, "Stop after this many optimiser steps; 0 lets epochs decide.", min=0)
    batch_size: int = param(4, "Pairs per device per step.", min=1, max=4096)
    grad_accum: int = param(1, "Steps whose gradients add up before one update (effective batch = batch x this).",
                            min=1, max=1024)
    max_length: int = param(512, "Tokens kept per prompt + answer; longer ones are truncated.", min=16,
                            max=131072)
    warmup: float = param(0.1, "Warm-up: a ratio of total steps if below 1, else a number of steps.", min=0)
    scheduler: str = param("cosine", "How the learning rate decays after warm-up.",
                           choices=("cosine", "linear", "constant", "constant_with_warmup"))
    weight_decay: float = param(0.0, "L2 penalty on weights (AdamW decoupled).", min=0, max=1)
    lora_r: int = param(16, "LoRA rank: size of the adapter matrices.", min=1, max=1024, group="lora")
    lora_alpha: int = param(32, "LoRA scaling numerator (scale = alpha / r).", min=1, max=4096, group="lora")
    lora_dropout: float = param(0.05, "Dropout on the LoRA input.", min=0, max=0.9, group="lora")
    target_modules: str = param("all-linear", "Layers that get adapters: all-linear, or names like q_proj,v_proj.",
                                group="lora")
    eval_fraction: float = param(0.1, "Share of the prompts held out for eval when the project has no eval set.",
                                 min=0, max=0.5, group="schedule")
    eval_steps: int = param(20, "Evaluate every this many steps; 0 only at the end.", min=0, group="schedule")
    save_steps: int = param(50, "Save a checkpoint every this many steps (and always when stopped).", min=1,
                            group="schedule")
    logging_steps: int = param(1, "Report loss every this many steps.", min=1, group="schedule")
    gradient_checkpointing: bool = param(False, "Recompute activations in backward to save memory (slower).",
                                         group="schedule")


@dataclass
class RewardParams(PairParams):
    center_rewards: float = param(0.0, "Weight of a penalty that keeps rewards centred on zero (0 = off).",
                                  min=0, max=10, group="method")


@dataclass
class DPOParams(PairParams):
    beta: float = param(0.1, "How far the model may move from the reference: higher stays closer.",
                        min=1e-4, max=10, group="method")
    loss_type: str = param("sigmoid", "The preference loss: sigmoid is DPO; ipo, hinge, robust... are variants.",
                           choices=DPO_LOSS_TYPES, group="method")
    label_smoothing: float = param(0.0, "Assumed share of wrongly labelled pairs (robust / conservative DPO).",
                                   min=0, max=0.5, group="method")
