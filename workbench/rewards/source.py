"""A trained reward model as a scoring function, for methods that score their own samples.

The source is a run of method `reward` in the project (its id, `run:<id>` or
`run:<id>/checkpoint-N`) or a path to a sequence-classification model folder, or to a
SEQ_CLS adapter (a reward run's LoRA output: the base plus the adapter and its score head,
merged once on load). The scorer has the signature of a rule reward
(`scorer(prompts, completions, **columns)`, with `name` and `weight`), so
`workbench.rewards.combine` adds it to them.

Each (prompt, completion) is tokenized as TRL's reward trainer tokenized its pairs: a chat
prompt through the chat template with the answer as the assistant turn, a text prompt as
prompt + answer + end-of-sequence token; the score is read at the last token that is not padding.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench import locations, models
from workbench.data.errors import DataError
from workbench.files import read_toml
from workbench.rewards import completion_text
from workbench.run import layout


class RewardSourceError(ValueError):
    """The reward model named cannot be used; the message says what to give instead."""


def resolve_source(project: str, source: str) -> Path:
    """The folder of the reward model named by `source` (a reward run of `project`, or a path)."""
    source = source.strip()
    path = Path(source).expanduser()
    if path.exists():
        return _check_folder(path.resolve())
    run_id, _, checkpoint = source.removeprefix("run:").partition("/")
    run_dir = locations.run_dir(project, run_id)
    if not run_id or not (run_dir / layout.SPEC).exists():
        raise RewardSourceError(f"Reward model '{source}' is neither a run of project '{project}' nor an "
                                "existing path: give a reward run's id or a model folder.")
    method = read_toml(run_dir / layout.SPEC).get("job", {}).get("method")
    if method != "reward":
        raise RewardSourceError(f"Run '{run_id}' is a {method} run, not a reward model: train one with "
                                "--method reward and name its id.")
    if checkpoint:
        return _check_folder(layout.checkpoints(run_dir) / checkpoint)
    output = layout.output(run_dir)
    if output is not None:
        return _check_folder(output)
    raise RewardSourceError(f"Reward run '{run_id}' has not finished: no adapter or model yet. Name one of its "
                            f"checkpoints instead (run:{run_id}/checkpoint-N).")


def _check_folder(folder: Path) -> Path:
    if (folder / "adapter_config.json").exists():
        task = json.loads((folder / "adapter_config.json").read_text()).get("task_type")
        if task != "SEQ_CLS":
            raise RewardSourceError(f"'{folder}' is a {task} adapter, not a reward model (SEQ_CLS).")
        return folder
    if not (folder / "config.json").exists():
        raise RewardSourceError(f"'{folder}' is not a model folder (no config.json or adapter_config.json).")
    return folder


def load_scorer(project: str, source: str, device: str, dtype: str = "float32", batch_size: int = 8,
                weight: float = 1.0) -> "RewardModelScorer":
    """The scorer of the reward model named by `source`, loaded on `device`."""
    folder = resolve_source(project, source)
    model, tokenizer = _load(folder, dtype)
    return RewardModelScorer(model.to(device).eval(), tokenizer, batch_size, weight)


def _load(folder: Path, dtype: str):
    import torch
    from transformers import AutoModelForSequenceClassification

    torch_dtype = getattr(torch, dtype)
    if (folder / "adapter_config.json").exists():
        from peft import PeftModel

        base = json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"]
        base_folder = models.resolve(base)
        model = AutoModelForSequenceClassification.from_pretrained(base_folder, num_labels=1, dtype=torch_dtype)
        model = PeftModel.from_pretrained(model, folder).merge_and_unload()
        tokenizer = models.load_tokenizer(folder if (folder / "tokenizer_config.json").exists() else base_folder)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch_dtype)
        tokenizer = models.load_tokenizer(folder)
    if model.config.num_labels != 1:
        raise RewardSourceError(f"'{folder}' has {model.config.num_labels} outputs; a reward model has one.")
    model.config.pad_token_id = tokenizer.pad_token_id
    model.requires_grad_(False)
    return model, tokenizer


class RewardModelScorer:
    """Scores completions with a sequence-classification model: one float each."""

    name = __name__ = "reward_model"

    def __init__(self, model, tokenizer, batch_size: int = 8, weight: float = 1.0):
        self.model, self.tokenizer, self.batch_size, self.weight = model, tokenizer, batch_size, weight

    def encode(self, prompt: Any, completion: Any) -> list[int]:
        answer = completion_text(completion)
        if isinstance(prompt, list):
            if not self.tokenizer.chat_template:
                raise DataError("The reward model's tokenizer has no chat template, so it cannot score chat prompts.")
            messages = prompt + [{"role": "assistant", "content": answer}]
            return list(self.tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
        return self.tokenizer(f"{prompt}{answer}{self.tokenizer.eos_token or ''}")["input_ids"]

    def __call__(self, prompts: list, completions: list, **columns: Any) -> list[float]:
        import torch

        encoded = [self.encode(p, c) for p, c in zip(prompts, completions)]
        device = next(self.model.parameters()).device
        scores: list[float] = []
        self.tokenizer.padding_side = "right"
        with torch.no_grad():
            for start in range(0, len(encoded), self.batch_size):
                batch = self.tokenizer.pad({"input_ids": encoded[start:start + self.batch_size]},
                                           return_tensors="pt").to(device)
                scores.extend(self.model(**batch).logits[:, 0].float().tolist())
        return scores
