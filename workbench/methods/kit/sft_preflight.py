"""The preflight of an SFT run: the data checks of `workbench.data.preflight` on the rows
about to be trained. Warnings become status events and the run goes on; refusals raise
`DataError` before the model is even loaded."""

from __future__ import annotations

from pathlib import Path

from workbench.data import preflight
from workbench.data.memory import free_bytes, model_shape
from workbench.data.render import render, stop_token_ids
from workbench.methods.sft_params import SFTParams
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec


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
        longest = min(p.max_length, max(r.tokens for r in rendered))
        free, where = free_bytes(spec.runtime.device)
        width = 2 if spec.runtime.precision in ("bf16", "fp16") else 4
        found.extend(preflight.check_memory(model_shape(folder), p.batch_size, longest, p.mode == "full",
                                            free, where, width))
    for warning in found.warnings:
        job.status(f"Warning: {warning}")
    found.raise_errors()
