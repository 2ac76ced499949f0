"""A reward model as a reward: a sequence-classification model with one output, loaded ready to score.

TRL's trainers accept such a model among their reward functions (they tokenise prompt +
completion with its tokenizer and read logit 0), but only a plain `PreTrainedModel`: a LoRA
reward run is therefore merged on load, its trained score head included (it is saved with
the adapter as a module to save). The metric TRL logs for it is `rewards/reward_model/mean`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from workbench import models
from workbench.rewards.library import RewardError

NAME = "reward_model"


def reward_model_folder(project: str, ref: str) -> Path:
    """The folder of `ref` (run:<id>, run:<id>/checkpoint-N, or a path), checked to hold a reward model."""
    from workbench.run.model_refs import RefError, resolve_ref

    try:
        folder = Path(resolve_ref(project, ref))
    except RefError as exc:
        raise RewardError(f"reward_model: {exc}") from None
    if models.is_adapter(folder):
        task = json.loads((folder / "adapter_config.json").read_text()).get("task_type")
        if task != "SEQ_CLS":
            raise RewardError(f"reward_model '{ref}' is a {task or 'language model'} adapter, not a reward model: "
                              "name a run of the reward method.")
        return folder
    config = folder / "config.json"
    if not config.exists():
        raise RewardError(f"reward_model '{ref}' is not a model folder (no config.json in {folder}).")
    architectures = json.loads(config.read_text()).get("architectures") or []
    if not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise RewardError(f"reward_model '{ref}' is a {', '.join(architectures) or 'model'} without a score head; "
                          "name a run of the reward method or a sequence-classification model.")
    return folder


def load_reward_model(project: str, ref: str, dtype: str = "float32", device: str = "cpu",
                      status: Callable[..., None] | None = None):
    """(model, tokenizer): the reward model of `ref` in eval mode, a LoRA run merged with its head."""
    import torch
    from transformers import AutoModelForSequenceClassification

    folder = reward_model_folder(project, ref)
    kwargs = dict(num_labels=1, dtype=getattr(torch, dtype))
    if models.is_adapter(folder):
        from peft import PeftModel

        base = models.resolve(json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"],
                              status=status)
        model = AutoModelForSequenceClassification.from_pretrained(base, **kwargs)
        model = PeftModel.from_pretrained(model, folder).merge_and_unload()
        tokenizer = models.load_tokenizer(folder if (folder / "tokenizer_config.json").exists() else base)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(folder, **kwargs)
        tokenizer = models.load_tokenizer(folder)
    model.config.pad_token_id = tokenizer.pad_token_id  # the score is read at the last token that is not padding
    model.config._name_or_path = NAME
    model.requires_grad_(False)
    return model.eval().to(device), tokenizer


def score_texts(model, tokenizer, prompts: list, completions: list) -> list[float]:
    """The reward model's scores of prompt + completion, built as TRL's trainers build them:
    a conversation through the chat template, text prompts and completions joined and ended with EOS."""
    if isinstance(prompts[0], list):
        texts = [tokenizer.apply_chat_template(p + c, tokenize=False) for p, c in zip(prompts, completions)]
    else:
        eos = tokenizer.eos_token or ""  # the reward trainer ends each text answer with it
        texts = [p + (c if c.endswith(eos) else c + eos) for p, c in zip(prompts, completions)]
    inputs = tokenizer(texts, return_tensors="pt", padding=True, padding_side="right", add_special_tokens=False)
    inputs = {k: v.to(model.device) for k, v in inputs.items()}
    return model(**inputs).logits[:, 0].float().tolist()
