"""The memory estimate's workload length: the longest training record of the project's data, as the trainer
tokenises it, at most max_length (`workbench.registry.lengths.longest_record`)."""

from __future__ import annotations

import json
import os

from tests.conftest import write_jsonl
from workbench import models
from workbench import project as projects
from workbench.data.importer import import_file
from workbench.registry.estimate import estimate
from workbench.registry.lengths import longest_record

CITATION = "Eleanor Crowley (1955). The Island and the Harbour: Notes from the Field. New Haven: Yale UP. "


def chat(user: str, answer: str = "Crowley, 1955.") -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}


def tokens(tokenizer, messages: list[dict]) -> int:
    ids = tokenizer.apply_chat_template(messages, tokenize=True)
    return len(ids["input_ids"] if hasattr(ids, "keys") else ids)


def test_short_records_give_a_proportionally_smaller_estimate(home, tiny_model, tmp_path):
    tokenizer = models.load_tokenizer(tiny_model)
    rows = [chat(CITATION * (1 + i % 2)) for i in range(12)]
    longest = max(tokens(tokenizer, r["messages"]) for r in rows)
    projects.create("short", base_model=str(tiny_model))
    import_file("short", write_jsonl(tmp_path / "short.jsonl", rows))
    projects.create("long", base_model=str(tiny_model))
    import_file("long", write_jsonl(tmp_path / "long.jsonl", [chat(CITATION * 20)] * 12))
    values = {"batch_size": "2", "max_length": "256"}

    short, long = (estimate(name, "sft", values, device="cpu") for name in ("short", "long"))
    assert 40 < longest < 128
    assert short["step"] == f"2 x {longest} tokens (the longest record; max_length 256)"
    assert long["step"] == "2 x 256 tokens"  # records cut to max_length: the estimate's worst case
    parts = [{m["mode"]: m for m in r["modes"]}["lora"] for r in (short, long)]
    # The training pass grows with the tokens (the logits and the layers' activations, one term in the square of
    # the length on a CPU); what stays does not.
    ratio = parts[0]["activations"] / parts[1]["activations"]
    assert longest / 256 * 0.95 < ratio < longest / 256 * 1.05, ratio
    assert parts[0]["weights"] == parts[1]["weights"] and parts[0]["runtime"] == parts[1]["runtime"]


def test_a_pair_counts_its_prompt_and_longer_answer_and_an_edited_file_is_read_again(home, tiny_model, tmp_path):
    tokenizer = models.load_tokenizer(tiny_model)
    prompt = [{"role": "user", "content": CITATION}]
    pair = {"prompt": prompt, "chosen": [{"role": "assistant", "content": "Crowley, 1955."}],
            "rejected": [{"role": "assistant", "content": "A harbour, an island and a year: 1955. " * 3}]}
    projects.create("pairs", base_model=str(tiny_model))
    path = write_jsonl(tmp_path / "pairs.jsonl", [pair] * 4)
    import_file("pairs", path)

    expected = tokens(tokenizer, prompt + pair["rejected"])
    assert expected > tokens(tokenizer, prompt + pair["chosen"])
    assert longest_record("pairs", "dpo", str(tiny_model), 512) == expected
    assert longest_record("pairs", "dpo", str(tiny_model), 40) == 40  # the trainer cuts it to max_length
    # The reward trainer drops a pair that outgrows max_length: its worst batch is the longest pair that fits.
    shorter = {**pair, "rejected": [{"role": "assistant", "content": "Not 1955."}]}
    stored = projects.load("pairs").path / projects.load("pairs").dataset("pairs").file
    stored.write_text("".join(json.dumps(r) + "\n" for r in [pair, shorter] * 2))
    os.utime(stored, ns=(0, 10 ** 18))  # a new time, even on a file system with coarse times
    fits = tokens(tokenizer, prompt + pair["chosen"])
    assert longest_record("pairs", "reward", str(tiny_model), expected - 1) == fits
    assert longest_record("pairs", "dpo", str(tiny_model), expected - 1) == expected - 1


def test_a_fused_head_holds_one_tile_however_large_the_vocabulary():
    """TRL's fused LM head (SFT, DPO, GRPO...) scores in tiles of at most 4096 positions x 32768 columns; a
    trainer that builds the whole logits (ORPO) holds them all."""
    import dataclasses

    from transformers import LlamaConfig

    from workbench.methods.orpo_params import ORPOParams
    from workbench.methods.sft_params import SFTParams
    from workbench.params import build
    from workbench.registry.estimate import (
        DROPOUT_OFF,
        FUSED_HEAD,
        LOGIT_COPIES,
        Workload,
        mode_estimate,
    )

    def logits(method: str, params, vocab: int, sequences: int = 4, length: int = 512) -> int:
        """The logits part of the training pass: its activations with and without logit positions."""
        config = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2)
        work = Workload(sequences, length, length, LOGIT_COPIES["default"], dropout=method not in DROPOUT_OFF,
                        fused_head=method in FUSED_HEAD)
        with_logits = mode_estimate(config, params, "lora", None, 4, work).activations
        return with_logits - mode_estimate(config, params, "lora", None, 4,
                                           dataclasses.replace(work, logit_positions=0)).activations

    sft, orpo = build(SFTParams, {"lora_dropout": "0"}), build(ORPOParams, {"lora_dropout": "0"})
    assert logits("sft", sft, 49152) == logits("orpo", orpo, 49152)  # the copies were measured on this vocabulary
    assert logits("sft", sft, 4 * 49152) == logits("sft", sft, 49152)
    assert logits("orpo", orpo, 4 * 49152) == 4 * logits("orpo", orpo, 49152)
    assert logits("sft", sft, 49152, sequences=16) == logits("sft", sft, 49152, sequences=8)  # 4096 positions
    assert logits("orpo", orpo, 49152, sequences=16) == 2 * logits("orpo", orpo, 49152, sequences=8)
