"""REINFORCE leave-one-out (critic-free RLHF) with TRL's RLOOTrainer, in any training mode.

Each prompt gets `num_generations` completions; a completion's advantage is its reward minus
the mean reward of the other completions of its prompt (the leave-one-out baseline), with a
KL penalty towards the starting model (`beta`) folded into the reward. The reward is usually
a reward model (a run of the reward method); the library's rewards and a reward file's
functions can be added with their weights, as for GRPO. Logged per step: reward, reward_std,
rewards/<name>/mean, kl, entropy, completions/mean_length, completions/clipped_ratio.

The recipe: params and tokenizer -> prompts -> rewards -> model -> trainer -> train -> save.
"""

from __future__ import annotations

from workbench.data.prompts import has_chat_template
from workbench.methods.grpo import prompt_dataset, reward_setup, rl_args
from workbench.methods.grpo_params import RLOOParams
from workbench.methods.kit.recipe import (
    build_trainer,
    count_data,
    load,
    start,
    train_to_end,
)
from workbench.methods.kit.train_args import peft_config
from workbench.rewards.setup import check_group
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec


def run(spec: JobSpec, job: JobContext):
    from trl import RLOOConfig, RLOOTrainer

    # 1. Parameters, checked against their bounds and each other; the tokenizer.
    p, folder, tokenizer = start(spec, job, RLOOParams, check_group)
    runtime = spec.runtime

    # 2. Prompts, with the columns the rewards read.
    job.status("Preparing the prompts")
    train_ds = prompt_dataset(spec.train, runtime.seed, chat=has_chat_template(tokenizer))
    count_data(job, train_ds)
    job.check_stop()

    # 3. Rewards: the reward model, and any rule-based rewards with their weights.
    reward_funcs, weights = reward_setup(spec, job, p, train_ds)
    job.check_stop()

    # 4. Policy model (TRL keeps the frozen reference for the KL penalty).
    model = load(spec, job, p, folder)
    job.check_stop()

    # 5. Trainer.
    config = RLOOConfig(
        **rl_args(p, job, runtime, RLOOConfig),
        num_generations=p.num_generations,
        max_completion_length=p.max_completion_length,
        temperature=p.temperature,
        beta=p.beta,
        reward_weights=weights,
    )
    trainer = build_trainer(RLOOTrainer, job, model, config, tokenizer, train_ds,
                            reward_funcs=reward_funcs, peft_config=peft_config(p))

    # 6. Train and save: the adapter alone for LoRA and QLoRA, the whole model otherwise.
    return train_to_end(trainer, job, p, tokenizer)
