"""Exports of a reward-model run: its adapter with the score head, or the merged reward model.

A reward model is the base with a one-output score head (AutoModelForSequenceClassification),
so the merged export loads that class, folds the adapter in and keeps the trained head. GGUF
is refused: llama.cpp runs causal language models, and a score head is not one.
"""

from __future__ import annotations

from pathlib import Path

METHODS = ("reward",)


def is_reward(spec) -> bool:
    return spec.method in METHODS


def refuse_gguf(spec, run_id: str) -> None:
    from workbench.export.errors import ExportError

    if is_reward(spec):
        raise ExportError(f"Run {run_id} is a reward model (a score head, not a language model): llama.cpp cannot "
                          "run it, so it has no GGUF export. Export it as 'lora' or 'merged'.")


def export_reward_merged(folder: Path, is_adapter: bool, spec, out: Path, status) -> Path:
    """The reward model of `folder` (`is_adapter`: merged with its score head), loaded as every user of a
    reward model loads it (`workbench.rewards.model`), written to `out` with its tokenizer. Its config
    keeps whether it learnt from conversations, so it encodes pairs as the run did once it has left it."""
    from workbench.data.errors import DataError
    from workbench.export.merged import save
    from workbench.rewards.model import CONVERSATIONAL, load_folder, spec_trained_on_conversations

    status("Merging the adapter and its score head" if is_adapter else "Loading the fine-tuned reward model")
    model, tokenizer = load_folder(folder, status=status)
    try:
        conversational = spec_trained_on_conversations(spec)
    except DataError:
        conversational = None
    if conversational is not None:
        setattr(model.config, CONVERSATIONAL, conversational)
    return save(model, tokenizer, out, status, "Merged reward model")
