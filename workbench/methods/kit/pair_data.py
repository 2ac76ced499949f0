"""Preference pairs for the reward model and DPO: prompt, chosen, rejected rows.

Ranked records become every (better, worse) pair their order implies; records are held
out for eval before they are expanded, so no eval prompt is ever trained on."""

from __future__ import annotations

from workbench.data.errors import DataError
from workbench.data.feedback import ranked_pairs
from workbench.data.prep import split_sources
from workbench.methods.kit.recipe import count_data
from workbench.run.context import JobContext
from workbench.run.spec import DataSource, JobSpec


def record_pairs(record: dict) -> list[dict]:
    """The (prompt, chosen, rejected) pairs of one preference or ranked record."""
    if "chosen" in record:
        pairs = [record]
    elif "completions" in record:
        texts = record["completions"]
        pairs = [{"prompt": record["prompt"], "chosen": texts[a], "rejected": texts[b]}
                 for a, b in ranked_pairs(record) if texts[a] != texts[b]]
    else:
        raise DataError("Preference methods need preference (prompt, chosen, rejected) or ranked records; "
                        f"found a record with fields {', '.join(sorted(record))}.")
    for pair in pairs:
        if pair["chosen"] == pair["rejected"]:
            raise DataError("A preference pair has the same chosen and rejected answer; it teaches nothing. "
                            "Fix the dataset or import it again.")
    return [{"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"]} for p in pairs]


def _as_messages(pair: dict) -> dict:
    """One conversational row: text prompts become a user turn, text answers an assistant turn."""
    prompt, chosen, rejected = pair["prompt"], pair["chosen"], pair["rejected"]
    return {
        "prompt": [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt,
        "chosen": [{"role": "assistant", "content": chosen}] if isinstance(chosen, str) else chosen,
        "rejected": [{"role": "assistant", "content": rejected}] if isinstance(rejected, str) else rejected,
    }


def pair_rows(records: list[dict], conversational: bool) -> list[dict]:
    pairs = [p for r in records for p in record_pairs(r)]
    return [_as_messages(p) for p in pairs] if conversational else pairs


def pair_datasets(train: list[DataSource], eval_sources: list[DataSource], eval_fraction: float, seed: int):
    """(train, eval or None) as `datasets.Dataset`s of prompt/chosen/rejected rows, mixed by weight."""
    from datasets import Dataset

    split = split_sources(train, eval_sources, eval_fraction, seed)
    conversational = any(isinstance(r.get(k), list) for r in split.every for k in ("prompt", "chosen", "rejected"))
    train_rows = pair_rows(split.train, conversational)
    if not train_rows:
        raise DataError("The training datasets give no preference pair.")
    eval_rows = pair_rows(split.eval, conversational)
    return Dataset.from_list(train_rows), (Dataset.from_list(eval_rows) if eval_rows else None)


def prepare(spec: JobSpec, job: JobContext, eval_fraction: float):
    """A run's (train, eval or None) pairs, as `pair_datasets` makes them, with their counts recorded."""
    job.status("Preparing the data")
    train_ds, eval_ds = pair_datasets(spec.train, spec.eval, eval_fraction, spec.runtime.seed)
    count_data(job, train_ds, eval_ds)
    return train_ds, eval_ds
