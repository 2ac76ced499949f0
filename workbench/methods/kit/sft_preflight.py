"""The data of an SFT run (and of an offline distillation, which trains on the same rows), and
its preflight: the data checks of `workbench.data.preflight` on the rows about to be trained.
Warnings become status events and the run goes on; refusals raise `DataError` before the model
is even loaded."""

from __future__ import annotations

from pathlib import Path

from workbench.data import preflight
from workbench.data.memory import free_bytes, model_shape
from workbench.data.prep import sft_datasets
from workbench.data.render import render, stop_token_ids, tokenize
from workbench.methods.kit.recipe import count_data
from workbench.methods.sft_params import SFTParams
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec


def token_datasets(spec: JobSpec, job: JobContext, p: SFTParams, folder: Path, tokenizer):
    """(train, eval or None): the run's records mixed (chat records learn their last answer), an eval
    split held out when none is given, tokenised once (the trainer then only truncates), and checked."""
    job.status("Preparing the data")
    train_rows, eval_rows = sft_datasets(spec.train, spec.eval, p.eval_fraction, spec.runtime.seed)
    count_data(job, train_rows, eval_rows)
    check_rows(spec, tokenizer, train_rows)
    train_ds = tokenize(train_rows, tokenizer)
    eval_ds = tokenize(eval_rows, tokenizer) if eval_rows is not None else None
    check_tokenized(spec, job, p, folder, tokenizer, train_ds)
    return train_ds, eval_ds


def check_rows(spec: JobSpec, tokenizer, train_rows) -> None:
    """Refuse chat data when the tokenizer has no chat template (tokenising it would fail)."""
    names = ", ".join(s.dataset for s in spec.train)
    preflight.check_template([(names, train_rows.select(range(min(len(train_rows), 100))).to_list())],
                             tokenizer).raise_errors()


def check_tokenized(spec: JobSpec, job: JobContext, p: SFTParams, folder: Path, tokenizer, train_ds) -> None:
    """Loss, end-of-sequence and truncation checks on the tokenised rows, then the memory estimate."""
    stops = stop_token_ids(tokenizer, folder)
    rendered = [render(ids, labels, p.max_length, stops)
                for ids, labels in zip(train_ds["input_ids"], train_ds["labels"])]
    found = preflight.check_rendered(rendered, p.max_length)
    if rendered:
        # packed, every row is filled up to max_length (a padding-free step holds batch_size of them)
        longest = p.max_length if p.packing == "on" else min(p.max_length, max(r.tokens for r in rendered))
        free, where = free_bytes(spec.runtime.device)
        width = 2 if spec.runtime.precision in ("bf16", "fp16") else 4
        found.extend(preflight.check_memory(model_shape(folder), p.batch_size, longest, p.mode == "full",
                                            free, where, width))
    for warning in found.warnings:
        job.status(f"Warning: {warning}")
    found.raise_errors()
