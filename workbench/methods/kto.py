"""KTO with TRL's KTOTrainer: learn from single answers labelled good or bad (a thumbs up or down),
staying close to a frozen reference, the base (mode: LoRA, QLoRA or full).

No pairs are needed: each answer raises or lowers its own likelihood ratio to the reference, measured
against a KL estimate taken from the batch (each prompt with another row's answer), which is why a
batch holds at least two answers and the rows are read in a fixed, seeded order. Data:
`unpaired_label` records, or preference records split into a good and a bad answer each.
Logged per step: loss, kl, rewards/chosen and rewards/rejected (the good and bad answers' implicit
rewards), rewards/margins (forwarded as metrics).

The recipe: params and tokenizer -> labelled answers -> model -> trainer -> train -> save.
"""

from __future__ import annotations

import random

from workbench.data.errors import DataError
from workbench.data.prep import split_sources
from workbench.methods.kit.recipe import build_trainer, count_data, load, start, train_to_end
from workbench.methods.kit.train_args import peft_config, reference_kwargs, trainer_args
from workbench.methods.kto_params import KTOParams
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec


def labelled_answers(record: dict) -> list[dict]:
    """The (prompt, completion, label) rows of one record: an unpaired_label record as it is, a preference
    pair as its chosen answer (good) and its rejected one (bad)."""
    if "label" in record and "completion" in record:
        return [{"prompt": record["prompt"], "completion": record["completion"], "label": bool(record["label"])}]
    if "chosen" in record:
        return [{"prompt": record["prompt"], "completion": record["chosen"], "label": True},
                {"prompt": record["prompt"], "completion": record["rejected"], "label": False}]
    raise DataError("KTO needs answers labelled good or bad (prompt, completion, label) or preference pairs; "
                    f"found a record with fields {', '.join(sorted(record))}.")


def _as_messages(row: dict) -> dict:
    prompt, completion = row["prompt"], row["completion"]
    return {"prompt": [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt,
            "completion": [{"role": "assistant", "content": completion}] if isinstance(completion, str)
            else completion,
            "label": row["label"]}


def label_rows(records: list[dict], conversational: bool) -> list[dict]:
    rows = [row for r in records for row in labelled_answers(r)]
    return [_as_messages(r) for r in rows] if conversational else rows


def balanced_weight(rows: list[dict], undesirable_weight: float) -> float:
    """The good answers' weight that makes good x weight equal bad x weight (KTO's advice: 1 to 4/3)."""
    good = sum(1 for r in rows if r["label"])
    bad = len(rows) - good
    if not good or not bad:
        raise DataError(f"desirable_weight=0 balances good and bad answers, but the training data has {good} good "
                        f"and {bad} bad; set desirable_weight to a number.")
    return undesirable_weight * bad / good


def label_datasets(spec: JobSpec, eval_fraction: float):
    """(train, eval or None) datasets of prompt/completion/label rows; the training rows shuffled once with
    the seed (KTO reads them in order)."""
    from datasets import Dataset

    split = split_sources(spec.train, spec.eval, eval_fraction, spec.runtime.seed)
    conversational = any(isinstance(r.get(k), list) for r in split.every
                         for k in ("prompt", "completion", "chosen", "rejected"))
    train_rows = label_rows(split.train, conversational)
    if len(train_rows) < 2:
        raise DataError(f"KTO needs at least 2 labelled answers to train on; the data gives {len(train_rows)}.")
    random.Random(spec.runtime.seed).shuffle(train_rows)
    eval_rows = label_rows(split.eval, conversational)
    return train_rows, Dataset.from_list(train_rows), (Dataset.from_list(eval_rows) if len(eval_rows) > 1 else None)


def run(spec: JobSpec, job: JobContext):
    from trl import KTOConfig, KTOTrainer

    # 1. Parameters, checked against their bounds; the tokenizer.
    p, folder, tokenizer = start(spec, job, KTOParams)

    # 2. Labelled answers: preference pairs give one good and one bad; eval records are held out first.
    job.status("Preparing the data")
    rows, train_ds, eval_ds = label_datasets(spec, p.eval_fraction)
    count_data(job, train_ds, eval_ds)
    desirable_weight = p.desirable_weight or balanced_weight(rows, p.undesirable_weight)
    job.check_stop()

    # 3. Model (the reference is made by the trainer: the base with the adapter off, or a frozen copy).
    model = load(spec, job, p, folder)
    job.check_stop()

    # 4. Trainer.
    config = KTOConfig(
        **trainer_args(p, job, spec.runtime, has_eval=eval_ds is not None),
        **reference_kwargs(p, spec.runtime),  # a full run's reference in 16 bits
        beta=p.beta,
        loss_type=p.loss_type,
        desirable_weight=desirable_weight,
        undesirable_weight=p.undesirable_weight,
    )
    trainer = build_trainer(KTOTrainer, job, model, config, tokenizer, train_ds, eval_ds,
                            peft_config=peft_config(p))

    # 5. Train, final eval and save: the adapter alone for LoRA, the whole model otherwise.
    return train_to_end(trainer, job, p, tokenizer)
