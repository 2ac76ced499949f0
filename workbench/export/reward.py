"""Exports of a reward-model run: its adapter with the score head, or the merged reward model.

A reward model is the base with a one-output score head (AutoModelForSequenceClassification),
so the merged export loads that class, folds the adapter in and keeps the trained head. GGUF
is refused: llama.cpp runs causal language models, and a score head is not one.
"""

from __future__ import annotations

from pathlib import Path

from workbench import models

METHODS = ("reward",)


def is_reward(spec) -> bool:
    return spec.method in METHODS


def refuse_gguf(spec, run_id: str) -> None:
    from workbench.export import ExportError

    if is_reward(spec):
        raise ExportError(f"Run {run_id} is a reward model (a score head, not a language model): llama.cpp cannot "
                          "run it, so it has no GGUF export. Export it as 'lora' or 'merged'.")


def export_reward_merged(folder: Path, is_adapter: bool, spec, out: Path, status) -> Path:
    from workbench.ranking.scoring import load_seq_cls

    base = models.resolve(spec.model_path or spec.base_model)
    tokenizer = models.load_tokenizer(folder if (folder / "tokenizer_config.json").exists() else base)
    if is_adapter:
        from peft import PeftModel

        status("Loading the base model with a score head")
        model = load_seq_cls(base, "float32", "cpu", tokenizer.pad_token_id)
        status("Merging the adapter and its score head")
        model = PeftModel.from_pretrained(model, folder).merge_and_unload()
    else:
        status("Loading the fine-tuned reward model")
        model = load_seq_cls(folder, "float32", "cpu", tokenizer.pad_token_id)
    status(f"Saving to {out}")
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    status(f"Merged reward model written to {out}")
    return out
