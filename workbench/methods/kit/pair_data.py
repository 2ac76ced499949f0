"""Preference pairs for the reward model and DPO: prompt, chosen, rejected rows.

Ranked records become every (better, worse) pair their order implies; records are held
out for eval before they are expanded, so no eval prompt is ever trained on. A ranked
record may mark answers the token limit cut (`cut`, from a sampling session): DPO and ORPO
leave out the pairs that prefer one (`cut_answers=drop`), since raising the likelihood of an
answer that stops mid-sentence teaches the model to stop there; a reward model keeps them, a
person having judged the cut answer as it was."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.data.errors import DataError
from workbench.data.feedback import ranked_pairs
from workbench.data.prep import split_sources
from workbench.methods.kit.recipe import count_data
from workbench.run.context import JobContext
from workbench.run.spec import DataSource, JobSpec


@dataclass
class Pairs:
    """The pairs of some records, and how many were left out because the preferred answer was cut."""

    rows: list[dict]
    cut: int = 0


def record_pairs(record: dict, drop_cut: bool = False) -> Pairs:
    """The (prompt, chosen, rejected) pairs of one preference or ranked record; with `drop_cut`, not the
    pairs whose chosen answer the record marks as cut by the token limit."""
    cut = 0
    if "chosen" in record:
        pairs = [record]
    elif "completions" in record:
        texts, marked = record["completions"], set(record.get("cut") or ())
        every = [(a, b) for a, b in ranked_pairs(record) if texts[a] != texts[b]]
        kept = [(a, b) for a, b in every if not (drop_cut and a in marked)]
        cut = len(every) - len(kept)
        pairs = [{"prompt": record["prompt"], "chosen": texts[a], "rejected": texts[b]} for a, b in kept]
    else:
        raise DataError("Preference methods need preference (prompt, chosen, rejected) or ranked records; "
                        f"found a record with fields {', '.join(sorted(record))}.")
    for pair in pairs:
        if pair["chosen"] == pair["rejected"]:
            raise DataError("A preference pair has the same chosen and rejected answer; it teaches nothing. "
                            "Fix the dataset or import it again.")
    return Pairs([{"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"]} for p in pairs], cut)


def _as_messages(pair: dict) -> dict:
    """One conversational row: text prompts become a user turn, text answers an assistant turn."""
    prompt, chosen, rejected = pair["prompt"], pair["chosen"], pair["rejected"]
    return {
        "prompt": [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt,
        "chosen": [{"role": "assistant", "content": chosen}] if isinstance(chosen, str) else chosen,
        "rejected": [{"role": "assistant", "content": rejected}] if isinstance(rejected, str) else rejected,
    }


def pair_rows(records: list[dict], conversational: bool, drop_cut: bool = False) -> Pairs:
    every = [record_pairs(r, drop_cut) for r in records]
    rows = [p for pairs in every for p in pairs.rows]
    return Pairs([_as_messages(p) for p in rows] if conversational else rows, sum(p.cut for p in every))


def pair_datasets(train: list[DataSource], eval_sources: list[DataSource], eval_fraction: float, seed: int,
                  drop_cut: bool = False):
    """(train, eval or None, pairs left out as cut) with `datasets.Dataset`s of prompt/chosen/rejected rows,
    mixed by weight."""
    from datasets import Dataset

    split = split_sources(train, eval_sources, eval_fraction, seed)
    conversational = any(isinstance(r.get(k), list) for r in split.every for k in ("prompt", "chosen", "rejected"))
    train_pairs = pair_rows(split.train, conversational, drop_cut)
    if not train_pairs.rows:
        if train_pairs.cut:
            raise DataError(f"Every preference pair of the training data ({train_pairs.cut}) prefers an answer the "
                            "token limit cut: sample again with more max new tokens, or set cut_answers=keep to "
                            "train on them.")
        raise DataError("The training datasets give no preference pair.")
    eval_pairs = pair_rows(split.eval, conversational, drop_cut)
    return (Dataset.from_list(train_pairs.rows), Dataset.from_list(eval_pairs.rows) if eval_pairs.rows else None,
            train_pairs.cut + eval_pairs.cut)


def prepare(spec: JobSpec, job: JobContext, eval_fraction: float, drop_cut: bool = False):
    """A run's (train, eval or None) pairs, as `pair_datasets` makes them, with their counts recorded; the
    pairs left out as cut are said in the spec's notes and the status line."""
    job.status("Preparing the data")
    train_ds, eval_ds, cut = pair_datasets(spec.train, spec.eval, eval_fraction, spec.runtime.seed, drop_cut)
    count_data(job, train_ds, eval_ds)
    if cut:
        kept = len(train_ds) + (len(eval_ds) if eval_ds is not None else 0)
        note = (f"{cut} of {cut + kept} preference pairs left out: their preferred answer was cut by the token "
                "limit (cut_answers=keep trains on them).")
        job.note(note)
        job.status(note)
    return train_ds, eval_ds
