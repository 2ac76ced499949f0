"""On-policy distillation with TRL's GKDTrainer (generalized knowledge distillation, Agarwal et al. 2024).

At each step, with probability `lmbda` the student answers the batch's prompts itself and the teacher
scores those answers token by token; otherwise the dataset's answers are used (or, with `seq_kd`, the
teacher's own generations). The loss is the generalized Jensen-Shannon divergence between the two
next-token distributions over the answer tokens (`beta` 0: forward KL, 1: reverse KL), at temperature 1:
TRL's GKD uses `temperature` for sampling only.

TRL's trainer is used as it is: it tokenises chat records itself with its ChatML collator (which keeps
the end of a record longer than max_length), so the data here are chat records, not SFT's token rows.

The recipe: params and tokenizer -> teacher check -> chat records -> models -> trainer -> train -> save.
"""

from __future__ import annotations

from workbench.data.errors import DataError
from workbench.data.prep import split_sources
from workbench.data.render import stop_token_ids
from workbench.methods.distill_params import GKDParams
from workbench.methods.kit import teacher as teachers
from workbench.methods.kit.recipe import build_trainer, count_data, start, train_to_end
from workbench.methods.kit.samples import EvalAnswers
from workbench.methods.kit.sft_preflight import check_rows
from workbench.methods.kit.train_args import peft_config, trainer_args
from workbench.run.context import JobContext
from workbench.run.spec import DataSource, JobSpec


def chat_datasets(spec: JobSpec, eval_fraction: float, seed: int):
    """(train, eval or None) as `datasets.Dataset`s of `messages`, mixed and held out like SFT's."""
    from datasets import Dataset

    def chat_only(source: DataSource, records: list[dict]) -> None:
        if any("messages" not in r for r in records):
            raise DataError(f"Dataset '{source.dataset}': on-policy distillation reads chat records "
                            "(messages ending with the assistant's answer).")

    split = split_sources(spec.train, spec.eval, eval_fraction, seed, check=chat_only)
    as_rows = lambda records: Dataset.from_list([{"messages": r["messages"]} for r in records])  # noqa: E731
    return as_rows(split.train), (as_rows(split.eval) if split.eval else None)


def run(spec: JobSpec, job: JobContext):
    from trl.experimental.gkd import GKDConfig, GKDTrainer

    # 1. Parameters, checked against their bounds (a teacher is required); the student's tokenizer.
    p, folder, tokenizer = start(spec, job, GKDParams)

    # 2. The teacher: resolved, and refused unless it shares the student's tokenizer.
    teacher_folder = teachers.prepare(spec, job, p.teacher, folder)
    job.check_stop()

    # 3. Chat records; the prompts are rendered with the tokenizer's chat template.
    job.status("Preparing the data")
    train_ds, eval_ds = chat_datasets(spec, p.eval_fraction, spec.runtime.seed)
    count_data(job, train_ds, eval_ds)
    check_rows(spec, tokenizer, train_ds)
    job.check_stop()

    # 4. Models: the student, and the teacher frozen in eval mode on the same device.
    model, teacher_model = teachers.load_with_student(spec, job, p, folder, teacher_folder)
    job.check_stop()

    # 5. Trainer.
    config = GKDConfig(
        **trainer_args(p, job, spec.runtime, has_eval=eval_ds is not None),
        lmbda=p.lmbda,
        beta=p.beta,
        temperature=p.temperature,
        max_new_tokens=p.max_new_tokens,
        seq_kd=p.seq_kd,
    )
    trainer = build_trainer(GKDTrainer, job, model, config, tokenizer, train_ds, eval_ds,
                            teacher_model=teacher_model, peft_config=peft_config(p))
    if p.sample_count and eval_ds is not None:  # the student's greedy answers to a few held-out prompts
        trainer.add_callback(EvalAnswers(job, trainer, p.sample_count, p.sample_max_tokens,
                                         sorted(stop_token_ids(tokenizer, folder))))

    # 6. Train, final eval and save: the adapter alone for LoRA, the whole model otherwise.
    return train_to_end(trainer, job, p, tokenizer)
