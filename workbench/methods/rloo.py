"""REINFORCE leave-one-out (critic-free RLHF) with TRL's RLOOTrainer, in any training mode.

Each prompt gets `num_generations` completions; a completion's advantage is its reward minus
the mean reward of the other completions of its prompt (the leave-one-out baseline), with a
KL penalty towards the starting model (`beta`) folded into the reward. The reward is usually
a reward model (a run of the reward method); the library's rewards and a reward file's
functions can be added with their weights, as for GRPO. Logged per step: reward, reward_std,
rewards/<name>/mean, kl, entropy, completions/mean_length, completions/clipped_ratio.

The recipe: params -> tokenizer -> prompts -> rewards -> model -> trainer -> train -> save.
"""

from __future__ import annotations

from workbench import models
from workbench import params as params_mod
from workbench.data.prompts import has_chat_template
from workbench.methods.grpo import prompt_dataset, reward_setup, rl_args
from workbench.methods.grpo_params import RLOOParams
from workbench.methods.kit.callback import EventCallback
from workbench.methods.kit.train_args import check_mode, finish, load_model, peft_config, prepare_base
from workbench.rewards.setup import check_group
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec


def run(spec: JobSpec, job: JobContext):
    from trl import RLOOConfig, RLOOTrainer

    # 1. Parameters, checked against their bounds and each other.
    p: RLOOParams = params_mod.build(RLOOParams, spec.params)
    check_group(p)
    runtime = spec.runtime
    check_mode(p, runtime)

    # 2. Tokenizer.
    folder, tokenizer = prepare_base(spec, job)

    # 3. Prompts, with the columns the rewards read.
    job.status("Preparing the prompts")
    train_ds = prompt_dataset(spec.train, runtime.seed, chat=has_chat_template(tokenizer))
    job.data_counts = (len(train_ds), 0)
    job.check_stop()

    # 4. Rewards: the reward model, and any rule-based rewards with their weights.
    reward_funcs, weights = reward_setup(spec, job, p, train_ds)
    job.check_stop()

    # 5. Policy model (TRL keeps the frozen reference for the KL penalty).
    job.status(f"Loading {models.describe(spec.base_model)}")
    model = load_model(p, folder, runtime)
    job.check_stop()

    # 6. Trainer.
    config = RLOOConfig(
        **rl_args(p, job, runtime, RLOOConfig),
        num_generations=p.num_generations,
        max_completion_length=p.max_completion_length,
        temperature=p.temperature,
        beta=p.beta,
        reward_weights=weights,
    )
    trainer = RLOOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=config,
        train_dataset=train_ds,
        processing_class=tokenizer,
        peft_config=peft_config(p),
        callbacks=[EventCallback(job)],
    )
    job.check_stop()

    # 7. Train and save: the adapter alone for LoRA and QLoRA, the whole model otherwise.
    return finish(trainer, job, p, tokenizer, has_eval=False)
