"""Group relative policy optimisation with TRL's GRPOTrainer, in any training mode (LoRA, QLoRA, full...).

For each prompt the model samples `num_generations` completions; each is scored by the
rewards (rule-based ones of the library, functions of the person's reward file, a reward
model), and a completion is pushed up by how much its total beats the mean of its group.
No critic, and with beta = 0 no reference model either. Logged per step (as Log metrics):
reward, reward_std, rewards/<name>/mean for each reward, kl (when beta > 0), entropy,
completions/mean_length, completions/clipped_ratio, clip_ratio/*.

Data: prompt records (their other columns, such as answer or tests, reach the rewards),
prompt/completion records (the completion becomes the `answer` column) and chat records
(the turns before the last answer are the prompt; that answer is the `answer` column).

The recipe: params -> tokenizer -> prompts -> rewards -> model -> trainer -> train -> save.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from workbench import locations, models
from workbench import params as params_mod
from workbench.data.errors import DataError
from workbench.data.mixing import mix
from workbench.data.prep import read_source
from workbench.methods.grpo_params import GRPOParams, RLParams
from workbench.methods.kit.callback import EventCallback
from workbench.methods.kit.train_args import (
    check_mode,
    dtype_name,
    finish,
    load_model,
    peft_config,
    prepare_base,
    trainer_args,
)
from workbench.rewards import RewardError, completion_text, load_rewards
from workbench.run.context import JobContext
from workbench.run.spec import DataSource, JobSpec, Runtime


def run(spec: JobSpec, job: JobContext):
    from trl import GRPOConfig, GRPOTrainer

    # 1. Parameters, checked against their bounds and each other.
    p: GRPOParams = params_mod.build(GRPOParams, spec.params)
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

    # 4. Rewards: the library's and the reward file's, checked on a first record; the reward model last.
    reward_funcs, weights, processing = reward_setup(spec, job, p, train_ds)
    job.check_stop()

    # 5. Policy model.
    job.status(f"Loading {models.describe(spec.base_model)}")
    model = load_model(p, folder, runtime)
    job.check_stop()

    # 6. Trainer.
    config = GRPOConfig(
        **rl_args(p, job, runtime, GRPOConfig),
        num_generations=p.num_generations,
        max_completion_length=p.max_completion_length,
        temperature=p.temperature,
        beta=p.beta,
        loss_type=p.loss_type,
        importance_sampling_level="sequence" if p.loss_type == "luspo" else "token",
        scale_rewards=p.scale_rewards,
        reward_weights=weights,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=config,
        train_dataset=train_ds,
        processing_class=tokenizer,
        reward_processing_classes=processing,
        peft_config=peft_config(p),
        callbacks=[EventCallback(job)],
    )
    job.check_stop()

    # 7. Train and save: the adapter alone for LoRA and QLoRA, the whole model otherwise.
    return finish(trainer, job, p, tokenizer, has_eval=False)


# --- shared with RLOO and the dry run -----------------------------------------------------------


def check_group(p: RLParams) -> None:
    """Each step must hold whole groups: TRL compares a completion with the others of its prompt."""
    completions = p.batch_size * p.grad_accum
    if completions % p.num_generations:
        raise params_mod.ParamError(
            f"batch_size x grad_accum ({p.batch_size} x {p.grad_accum} = {completions}) must be a multiple of "
            f"num_generations ({p.num_generations}), e.g. batch_size={p.num_generations} with grad_accum=1.")


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def prompt_row(record: dict, chat: bool) -> dict:
    """One row: `prompt` (messages when `chat`) and the columns the rewards may read.

    Text prompts become a user turn when the model has a chat template, so an instruct model
    sees them as it was trained to; TRL then hands completions to the rewards as messages."""
    if "messages" in record:
        messages = record["messages"]
        row = {"prompt": messages[:-1], "answer": completion_text(messages[-1:])}
    elif "completion" in record:
        row = {"prompt": record["prompt"], "answer": completion_text(record["completion"])}
    elif "prompt" in record and not record.keys() & {"chosen", "rejected", "completions", "text"}:
        row = dict(record)
    else:
        raise DataError("This method needs prompt, prompt/completion or chat records; found a record with fields "
                        f"{', '.join(sorted(record))}.")
    if chat and isinstance(row["prompt"], str):
        row["prompt"] = [{"role": "user", "content": row["prompt"]}]
    return row


def prompt_rows(records: list[dict], chat: bool) -> list[dict]:
    """The rows of `records`, numbered (`record_index`, 1-based, for messages), with the same columns each."""
    rows = [prompt_row(r, chat) for r in records]
    if any(isinstance(r["prompt"], list) for r in rows):  # one run: every prompt a conversation or none
        for r in rows:
            if isinstance(r["prompt"], str):
                r["prompt"] = [{"role": "user", "content": r["prompt"]}]
    columns = list(dict.fromkeys(k for r in rows for k in r))
    return [{**{c: r.get(c) for c in columns}, "record_index": i} for i, r in enumerate(rows, start=1)]


def prompt_dataset(train: list[DataSource], seed: int, chat: bool):
    from datasets import Dataset

    groups = [read_source(s) for s in train]
    if not any(groups):
        raise DataError("The training datasets hold no records.")
    return Dataset.from_list(prompt_rows(mix(groups, [s.weight for s in train], seed), chat))


def reward_file_path(project: str, reward_file: str) -> str:
    """An absolute path: a relative `reward_file` is read from the project folder."""
    if not reward_file.strip():
        return ""
    path = Path(reward_file).expanduser()
    if not path.is_absolute():
        path = locations.project_dir(project) / path
    if not path.exists():
        raise RewardError(f"The reward file {path} does not exist.")
    return str(path)


def reward_setup(spec: JobSpec, job: JobContext, p: Any, dataset) -> tuple[list, list[float], list]:
    """(reward functions, weights, reward processing classes) for a TRL trainer."""
    job.status("Loading the rewards")
    warn = lambda message: job.status(f"Warning: {message}")  # noqa: E731
    funcs: list = []
    if p.rewards.strip():
        funcs = load_rewards(p.rewards, reward_file_path(spec.project, p.reward_file), options=p, warn=warn)
        check_columns(funcs, dataset)
    weights = [r.weight for r in funcs]
    processing: list = [None] * len(funcs)
    if p.reward_model.strip():
        from workbench.rewards.model import load_reward_model

        job.status(f"Loading the reward model {p.reward_model}")
        model, tokenizer = load_reward_model(spec.project, p.reward_model, dtype_name(spec.runtime),
                                             spec.runtime.device, status=job.status)
        funcs.append(model)
        weights.append(p.reward_model_weight)
        processing.append(tokenizer)
    if not funcs:
        raise RewardError("No reward: name rewards (e.g. rewards=format) or a reward_model (run:<id> of a reward run).")
    return funcs, weights, processing


def check_columns(rewards: list, dataset) -> None:
    """Run the library rewards once on the first record, so a missing column or a bad pattern stops the
    run before the model loads (the reward file's functions run first in training, where they are isolated)."""
    first = dataset[0]
    columns = {k: [v] for k, v in first.items() if k != "prompt"}
    for reward in rewards:
        if not reward.user_defined:
            reward([first["prompt"]], [""], **columns)


def rl_args(p: Any, job: JobContext, runtime: Runtime, config_cls: type) -> dict[str, Any]:
    """The shared trainer arguments that `config_cls` (GRPOConfig, RLOOConfig) accepts; no eval."""
    shared = trainer_args(SimpleNamespace(**vars(p), max_length=None, eval_steps=0), job, runtime, has_eval=False)
    accepted = {f.name for f in fields(config_cls)}
    return {k: v for k, v in shared.items() if k in accepted}
