"""Turn a spec's data sources into the datasets a TRL trainer reads."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from workbench.data import kinds
from workbench.data.errors import DataError
from workbench.data.mixing import mix
from workbench.data.prompts import prompt_of, prompt_rows
from workbench.data.readers import read_rows
from workbench.run.spec import DataSource


def read_source(source: DataSource) -> list[dict]:
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


def is_conversational(records: list[dict]) -> bool:
    """True when any record is a list of messages: then every record is rendered with the chat template."""
    return any("messages" in r or isinstance(r.get("prompt"), list) for r in records)


def to_prompt_completion(record: dict, conversational: bool) -> dict:
    """One SFT row: chat records learn their last assistant turn (earlier turns are the prompt,
    no loss); text records learn every token; prompt/completion records learn the completion."""
    if "messages" in record:
        return {"prompt": prompt_of(record), "completion": record["messages"][-1:]}
    if "text" in record and "prompt" not in record:
        if conversational:
            raise DataError("Plain text records cannot be trained together with chat records in one run: "
                            "train them in separate runs, or turn the text into chat records.")
        return {"prompt": "", "completion": record["text"]}
    completion = record["completion"]
    if conversational and isinstance(completion, str):
        completion = [{"role": "assistant", "content": completion}]
    return {"prompt": prompt_of(record, chat=conversational), "completion": completion}


def sft_rows(records: list[dict], conversational: bool | None = None) -> list[dict]:
    """The rows of an SFT dataset. Text alone stays a language-modelling `text` column, as TRL expects."""
    if conversational is None:
        conversational = is_conversational(records)
    if records and all("text" in r and "prompt" not in r and "messages" not in r for r in records):
        return [{"text": r["text"]} for r in records]
    return [to_prompt_completion(r, conversational) for r in records]


@dataclass
class Split:
    """The records of a run's sources: `train` mixed by weight, `eval` held out before mixing (so no
    eval record is ever trained on), and `every` record read, before either (what kind of rows to
    build is decided on all of them)."""

    train: list[dict]
    eval: list[dict]
    every: list[dict]


def split_sources(train: list[DataSource], eval_sources: list[DataSource], eval_fraction: float, seed: int,
                  check: Callable[[DataSource, list[dict]], None] | None = None) -> Split:
    """Read every source (`check(source, records)` each, when given), hold out the eval part (`hold_out`)
    and mix the training sources by their weights (see `workbench.data.mixing`)."""
    groups = [read_source(s) for s in train]
    evals = [read_source(s) for s in eval_sources]
    if check is not None:
        for source, records in zip(train + eval_sources, groups + evals):
            check(source, records)
    if not any(groups):
        raise DataError("The training datasets hold no records.")
    eval_records = [r for records in evals for r in records]
    every = [r for g in groups for r in g] + eval_records
    groups, eval_records = hold_out(groups, eval_records, eval_fraction, seed)
    return Split(train=mix(groups, [s.weight for s in train], seed), eval=eval_records, every=every)


def sft_datasets(train: list[DataSource], eval_sources: list[DataSource], eval_fraction: float, seed: int):
    """(train, eval or None) as `datasets.Dataset`s of prompt/completion (or text) rows (see `split_sources`)."""
    from datasets import Dataset

    split = split_sources(train, eval_sources, eval_fraction, seed)
    conversational = is_conversational(split.every)
    train_ds = Dataset.from_list(sft_rows(split.train, conversational))
    eval_ds = Dataset.from_list(sft_rows(split.eval, conversational)) if split.eval else None
    return train_ds, eval_ds


def read_prompt_rows(train: list[DataSource], seed: int, chat: bool) -> list[dict]:
    """The prompt rows (`workbench.data.prompts.prompt_rows`) of the training sources, mixed by weight:
    what GRPO, RLOO and PPO sample from."""
    groups = [read_source(s) for s in train]
    if not any(groups):
        raise DataError("The training datasets hold no records.")
    return prompt_rows(mix(groups, [s.weight for s in train], seed), chat)


def hold_out(groups: list[list[dict]], eval_records: list[dict], eval_fraction: float, seed: int):
    """(groups, eval records): without eval records, a seeded `eval_fraction` of the records (at least
    one, from 10 records up) is taken out of the groups to be the eval set."""
    total = sum(len(g) for g in groups)
    if eval_records or eval_fraction <= 0 or total < 10:
        return groups, eval_records
    rng = random.Random(seed)
    order = list(range(total))
    rng.shuffle(order)
    held = set(order[:max(1, int(round(total * eval_fraction)))])
    tagged = [(i, r) for i, r in enumerate(r for g in groups for r in g)]
    starts = [sum(len(g) for g in groups[:k]) for k in range(len(groups))]
    return ([[r for i, r in tagged[start:start + len(g)] if i not in held] for start, g in zip(starts, groups)],
            [r for i, r in tagged if i in held])
