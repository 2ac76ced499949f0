"""Parameters of PPO: the rollout, the clipped updates, the KL control and the reward.

The options of the library rewards (answer_column, length_max, ...) come last, from
`workbench.rewards.library.OPTIONS` (`common.reward_options`), so they are described once, where the
rewards live."""

from __future__ import annotations

from workbench.methods.kit import common_params as common
from workbench.params import Fields, param, paramclass


@paramclass
class PPOParams:
    mode: str = common.mode(choices=("lora", "full"))
    learning_rate: float = param(3e-5, "Step size of AdamW (LoRA ~1e-5..1e-4, full ~1e-6..1e-5).", min=1e-8, max=1.0)
    max_steps: int = param(100, "PPO iterations: each samples a batch, scores it and updates the policy.",
                           min=1, max=1_000_000)
    batch_size: int = param(8, "Prompts per iteration (one completion each).", min=1, max=4096)
    mini_batch_size: int = param(4, "Completions per optimiser step within an iteration.", min=1, max=4096)
    ppo_epochs: int = param(4, "Passes of optimiser steps over each iteration's completions.", min=1, max=100)
    max_prompt_length: int = param(256, "Prompt tokens kept (the start is cut from longer prompts).", min=1,
                                   max=131072)
    max_new_tokens: int = param(64, "Longest completion sampled, in tokens.", min=1, max=32768)
    temperature: float = param(1.0, "Sampling temperature of the completions (and of their log-probabilities).",
                               min=0.05, max=5.0)
    max_grad_norm: float = param(1.0, "Gradients are clipped to this norm before each optimiser step.",
                                 min=0.0, max=1000)
    reward_model: str = param("", "A reward run of this project (its id) or a path to a sequence "
                                  "classification model; empty: rule rewards alone.", group="reward")
    rewards: str = param("", "Rule rewards with weights, e.g. format:1,numeric:2 (library names or functions "
                             "of reward_file); empty: the reward model alone.", group="reward")
    reward_file: str = param("", "A Python file whose functions are rewards (name them in rewards).",
                             group="reward")
    score_clip: float = param(0.0, "Clip each sequence score to +-this (0 = no clipping).", min=0.0, max=1e6,
                              group="reward")
    whiten_rewards: bool = param(False, "Scale the per-token rewards of each batch to unit variance.",
                                 group="reward")
    kl_coef: float = param(0.05, "Weight of the KL penalty to the reference (the start value when adaptive).",
                           min=0.0, max=10.0, group="method")
    kl_control: str = param("adaptive", "adaptive moves kl_coef so the KL tends to target_kl; fixed keeps it.",
                            choices=("adaptive", "fixed"), group="method")
    target_kl: float = param(6.0, "Adaptive control: the KL (nats per completion) to aim for.", min=1e-3,
                             max=1000, group="method")
    kl_horizon: int = param(10000, "Adaptive control: completions over which the coefficient may move ~20%.",
                            min=1, max=10_000_000, group="method")
    kl_estimator: str = param("k1", "Per-token KL in the penalty: k1 = log p - log p_ref (Ziegler); k3 is "
                                    "never negative.", choices=("k1", "k2", "k3"), group="method")
    gamma: float = param(1.0, "Discount of later rewards.", min=0.0, max=1.0, group="method")
    lam: float = param(0.95, "GAE lambda: 1 uses the whole return, 0 trusts the value head alone.", min=0.0,
                       max=1.0, group="method")
    cliprange: float = param(0.2, "How far the policy ratio may move from 1 before its gradient is cut.",
                             min=0.0, max=10.0, group="method")
    cliprange_value: float = param(0.2, "How far a value may move from its rollout estimate before its "
                                        "gradient is cut.", min=0.0, max=1e6, group="method")
    vf_coef: float = param(0.1, "Weight of the value loss against the policy loss.", min=0.0, max=100,
                           group="method")
    entropy_coef: float = param(0.0, "Weight of an entropy bonus that keeps sampling diverse (0 = off).",
                                min=0.0, max=10.0, group="method")
    _lora: Fields = common.LORA.without("use_dora", "use_rslora")
    _schedule: Fields = common.SCHEDULE.without("eval_steps", "gradient_checkpointing")
    _samples: Fields = common.samples(5, 4, "sample_count completions of the iteration with each reward's score, the "
                                            "total and the advantage,", "Free: the iteration sampled and scored them.")
    _reward_options: Fields = common.reward_options(group="reward options")
