"""A tiny random causal LM with the real SmolLM2 tokenizer, for tests and benchmarks.

A training step on it takes milliseconds on a CPU, yet every piece (chat template,
tokenizer, PEFT targets, save/load) is the real one.
"""

from __future__ import annotations

from pathlib import Path

from workbench import locations, models

TINY = "tiny-llama-v1"  # the tests' model, under the cache's test-models/


def tiny_home() -> Path:
    """Where the tests' tiny model is built, once per machine."""
    return locations.cache_home() / "test-models" / TINY


def embedded_tokenizer():
    """SmolLM2's tokenizer: from the embedded model, or, where that package is not installed (a machine the
    tiny model was carried to), from the tiny model already built."""
    from transformers import AutoTokenizer

    try:
        gguf = models.default_gguf()
    except models.ModelError:
        if (tiny_home() / "tokenizer.json").exists():
            return AutoTokenizer.from_pretrained(tiny_home())
        raise
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


def make_tiny_model(out: Path, seed: int = 0) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out)
    if (out / "config.json").exists():
        return out
    tokenizer = embedded_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    partial = out.with_name(out.name + ".partial")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.rename(out)
    return out
