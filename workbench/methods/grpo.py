"""Group relative policy optimisation with TRL's GRPOTrainer, in any training mode (LoRA, QLoRA, full...).

For each prompt the model samples `num_generations` completions; each is scored by the
rewards (rule-based ones of the library, functions of the person's reward file, a reward
model), and a completion is pushed up by how much its total beats the mean of its group.
No critic, and with beta = 0 no reference model either. Logged per step (as Log metrics):
reward, reward_std, rewards/<name>/mean for each reward, kl (when beta > 0), entropy,
completions/mean_length, completions/clipped_ratio, clip_ratio/*, and reward_errors/<name> once a
reward has raised. At step 1 and every `sample_every` steps, the completions of `sample_count`
prompts become sample events (`methods.kit.samples`), with each reward's score and the advantage.

Data (rows by `workbench.data.prompts.prompt_rows`): prompt records (their other columns, such
as answer or tests, reach the rewards), prompt/completion records (the completion becomes the
`answer` column) and chat records (the turns before the last answer are the prompt; that answer
is the `answer` column).

The recipe: params and tokenizer -> prompts -> rewards -> model -> trainer -> train -> save.
"""

from __future__ import annotations

from dataclasses import fields
from types import SimpleNamespace
from typing import Any, Callable

from workbench.data.prep import read_prompt_rows
from workbench.data.prompts import has_chat_template
from workbench.methods.grpo_params import GRPOParams
from workbench.methods.kit.recipe import (
    build_trainer,
    count_data,
    load,
    start,
    train_to_end,
)
from workbench.methods.kit.samples import RewardSamples, counting_errors
from workbench.methods.kit.train_args import dtype_name, peft_config, reference_kwargs, trainer_args
from workbench.rewards.scoring import Recorder
from workbench.rewards.setup import check_group, method_rewards
from workbench.run.context import JobContext
from workbench.run.spec import DataSource, JobSpec, Runtime


def run(spec: JobSpec, job: JobContext):
    from trl import GRPOConfig, GRPOTrainer

    def own(p: GRPOParams) -> dict[str, Any]:
        return {"loss_type": p.loss_type, "scale_rewards": p.scale_rewards,
                "importance_sampling_level": "sequence" if p.loss_type == "luspo" else "token"}

    return train_on_rewards(spec, job, GRPOParams, GRPOConfig, GRPOTrainer, own)


# --- shared with RLOO ------------------------------------------------------------------------------


def train_on_rewards(spec: JobSpec, job: JobContext, params_cls: type, config_cls: type, trainer_cls: type,
                     own: Callable[[Any], dict[str, Any]]):
    """The recipe GRPO and RLOO share (TRL's trainers differ in how a completion's advantage is
    computed); `own(p)` gives the config fields of one method only."""
    # 1. Parameters, checked against their bounds and each other; the tokenizer.
    p, folder, tokenizer = start(spec, job, params_cls, check_group)
    runtime = spec.runtime

    # 2. Prompts, with the columns the rewards read.
    job.status("Preparing the prompts")
    train_ds = prompt_dataset(spec.train, runtime.seed, chat=has_chat_template(tokenizer))
    count_data(job, train_ds)
    job.check_stop()

    # 3. Rewards: the library's and the reward file's, checked on a first record; the reward model last.
    reward_funcs, weights = reward_setup(spec, job, p, train_ds)
    job.check_stop()

    # 4. Policy model (with beta > 0, TRL keeps the frozen reference for the KL penalty).
    model = load(spec, job, p, folder)
    job.check_stop()

    # 5. Trainer: TRL calls the rewards through a recorder, whose batches become sample events; its
    #    logged metrics count the completions each reward failed on (reward_errors/<name>).
    recorder = Recorder(reward_funcs)
    config = config_cls(
        **rl_args(p, job, runtime, config_cls),
        num_generations=p.num_generations,
        max_completion_length=p.max_completion_length,
        temperature=p.temperature,
        beta=p.beta,
        reward_weights=weights,
        **own(p),
    )
    trainer = build_trainer(counting_errors(trainer_cls, reward_funcs), job, model, config, tokenizer, train_ds,
                            reward_funcs=recorder.wrapped, peft_config=peft_config(p))
    trainer.add_callback(RewardSamples(job, recorder, trainer, p.sample_every, p.sample_count, p.num_generations))

    # 6. Train and save: the adapter alone for LoRA and QLoRA, the whole model otherwise.
    return train_to_end(trainer, job, p, tokenizer)


def prompt_dataset(train: list[DataSource], seed: int, chat: bool):
    """The prompt rows (`workbench.data.prompts.prompt_rows`) as a `datasets.Dataset`."""
    from datasets import Dataset

    return Dataset.from_list(read_prompt_rows(train, seed, chat))


def reward_setup(spec: JobSpec, job: JobContext, p: Any, dataset) -> tuple[list, list[float]]:
    """(reward functions, weights) for a TRL trainer: `rewards.setup.method_rewards`, the rule rewards
    tried on the first record before the reward model loads."""
    job.status("Loading the rewards")
    funcs = method_rewards(spec.project, p, spec.runtime.device, dtype_name(spec.runtime),
                           warn=lambda message: job.status(f"Warning: {message}"), status=job.status,
                           first_row=dataset[0])
    return funcs, [f.weight for f in funcs]


def rl_args(p: Any, job: JobContext, runtime: Runtime, config_cls: type) -> dict[str, Any]:
    """The shared trainer arguments that `config_cls` (GRPOConfig, RLOOConfig) accepts; no eval."""
    shared = trainer_args(SimpleNamespace(**vars(p), max_length=None, eval_steps=0), job, runtime, has_eval=False)
    shared.update(reference_kwargs(p, runtime))  # a full run's reference in 16 bits
    accepted = {f.name for f in fields(config_cls)}
    return {k: v for k, v in shared.items() if k in accepted}
