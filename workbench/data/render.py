"""What the model sees of a record, and which of its tokens carry loss.

Tokenising goes through TRL's own dataset preparation (`SFTTrainer._prepare_dataset`),
the very code the trainer runs, so the mask shown here is the mask trained: the SFT
method tokenises with `tokenize` below and hands the result to the trainer, which then
only truncates it to `max_length` (keeping the start) and drops rows left without loss.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

IGNORE = -100  # the label of a token that carries no loss
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>", "</s>")


def tokenize(rows, tokenizer):
    """A `datasets.Dataset` of `input_ids` and `labels`, untruncated, from SFT rows
    (prompt/completion or text, as `workbench.data.prep.sft_rows` builds them)."""
    import datasets
    from trl import SFTTrainer

    datasets.disable_progress_bars()
    dataset = rows if isinstance(rows, datasets.Dataset) else datasets.Dataset.from_list(list(rows))
    # The trainer's own preparation, run on a stand-in for the trainer with the settings the
    # SFT method uses: completion-only loss, the tokenizer's own chat template, no truncation.
    trainer = SimpleNamespace(_tokenizer=tokenizer, chat_template=None, completion_only_loss=True)
    args = SimpleNamespace(dataset_num_proc=None, dataset_text_field="text", assistant_only_loss=False,
                           max_length=None, truncation_mode="keep_start", shuffle_dataset=False)
    prepared = SFTTrainer._prepare_dataset(trainer, dataset, tokenizer, args, False, None, "records")
    return prepared.select_columns(["input_ids", "labels"])


def stop_token_ids(tokenizer, model_folder: Path | None = None) -> set[int]:
    """Tokens that end an answer: EOS, the generation config's EOS ids, known end-of-turn tokens."""
    ids = {tokenizer.eos_token_id} - {None}
    vocab = tokenizer.get_vocab()
    ids |= {vocab[t] for t in END_OF_TURN if t in vocab}
    config = Path(model_folder) / "generation_config.json" if model_folder else None
    if config is not None and config.exists():
        eos = json.loads(config.read_text()).get("eos_token_id")
        ids |= set(eos if isinstance(eos, list) else [eos] if isinstance(eos, int) else [])
    return ids


@dataclass
class Rendered:
    """One tokenised record as training sees it after truncation to `max_length`."""

    input_ids: list[int]
    loss: list[bool]  # per kept token
    tokens: int  # before truncation
    loss_tokens: int  # after truncation
    truncated: bool
    trains_stop: bool  # a stop token carries loss after truncation
    had_stop: bool  # a stop token carried loss before truncation


def render(input_ids: list[int], labels: list[int], max_length: int, stops: set[int]) -> Rendered:
    kept_labels = labels[:max_length]
    loss = [label != IGNORE for label in kept_labels]
    return Rendered(
        input_ids=list(input_ids[:max_length]), loss=loss, tokens=len(input_ids), loss_tokens=sum(loss),
        truncated=len(input_ids) > max_length,
        trains_stop=any(label in stops for label in kept_labels if label != IGNORE),
        had_stop=any(label in stops for label in labels if label != IGNORE),
    )


def segments(rendered: Rendered, tokenizer) -> list[dict]:
    """The kept text as runs of `{"text", "loss"}`, each run decoded on its own."""
    out: list[dict] = []
    start = 0
    for i in range(1, len(rendered.loss) + 1):
        if i == len(rendered.loss) or rendered.loss[i] != rendered.loss[start]:
            text = tokenizer.decode(rendered.input_ids[start:i], skip_special_tokens=False)
            out.append({"text": text, "loss": rendered.loss[start]})
            start = i
    return out


def render_rows(rows: list[dict], tokenizer, max_length: int, stops: set[int]) -> list[Rendered]:
    prepared = tokenize(rows, tokenizer)
    return [render(ids, labels, max_length, stops)
            for ids, labels in zip(prepared["input_ids"], prepared["labels"])]
