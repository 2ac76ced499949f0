"""Turn a spec's data sources into the datasets a TRL trainer reads."""

from __future__ import annotations

import random
from pathlib import Path

from workbench.data import kinds
from workbench.data.readers import read_rows
from workbench.jobs.errors import DataError
from workbench.jobs.spec import DataSource


def _read(source: DataSource) -> list[dict]:
    path = Path(source.file)
    if not path.exists():
        raise DataError(f"Dataset '{source.dataset}' is missing its file {path}.")
    records = []
    for row in read_rows(path):  # a file edited since its import is checked again, line by line
        try:
            if row.problem:
                raise kinds.RecordProblem(row.problem)
            records.append(kinds.normalise(row.record, kinds.detect(row.record)))
        except kinds.RecordProblem as exc:
            raise DataError(f"Dataset '{source.dataset}' line {row.line}: {exc}. "
                            "Fix the file or import it again.") from None
    return records


def to_prompt_completion(record: dict, conversational: bool) -> dict:
    """Chat records learn their last assistant turn; earlier turns are the prompt (no loss)."""
    if "messages" in record:
        messages = record["messages"]
        return {"prompt": messages[:-1], "completion": messages[-1:]}
    if conversational:
        return {"prompt": [{"role": "user", "content": record["prompt"]}],
                "completion": [{"role": "assistant", "content": record["completion"]}]}
    return {"prompt": record["prompt"], "completion": record["completion"]}


def sft_datasets(train: list[DataSource], eval_sources: list[DataSource], eval_fraction: float, seed: int):
    """(train, eval or None) as `datasets.Dataset`s of prompt/completion records."""
    from datasets import Dataset

    train_records = [r for s in train for r in _read(s)]
    eval_records = [r for s in eval_sources for r in _read(s)]
    if not train_records:
        raise DataError("The training datasets hold no records.")
    conversational = any("messages" in r for r in train_records + eval_records)
    if not eval_records and eval_fraction > 0 and len(train_records) >= 10:
        rng = random.Random(seed)
        order = list(range(len(train_records)))
        rng.shuffle(order)
        n_eval = max(1, int(round(len(train_records) * eval_fraction)))
        held = set(order[:n_eval])
        eval_records = [r for i, r in enumerate(train_records) if i in held]
        train_records = [r for i, r in enumerate(train_records) if i not in held]
    train_ds = Dataset.from_list([to_prompt_completion(r, conversational) for r in train_records])
    eval_ds = Dataset.from_list([to_prompt_completion(r, conversational) for r in eval_records]) \
        if eval_records else None
    return train_ds, eval_ds
