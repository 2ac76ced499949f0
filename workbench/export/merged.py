"""Export a merged model: the base with the adapter folded into its weights."""

from __future__ import annotations

from pathlib import Path

from workbench import models


def export_merged(folder: Path, is_adapter: bool, spec, out: Path, status) -> Path:
    import torch
    from transformers import AutoModelForCausalLM

    base = models.resolve(spec.model_path or spec.base_model)
    tokenizer = models.load_tokenizer(folder if (folder / "tokenizer_config.json").exists() else base)
    if is_adapter:
        from peft import PeftModel

        status("Loading the base model")
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        status("Merging the adapter")
        model = PeftModel.from_pretrained(model, folder).merge_and_unload()
    else:
        status("Loading the fine-tuned model")
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    return save(model, tokenizer, out, status, "Merged model")


def save(model, tokenizer, out: Path, status, what: str) -> Path:
    """Write a loaded model and its tokenizer into `out` (created), saying so."""
    status(f"Saving to {out}")
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    status(f"{what} written to {out}")
    return out
