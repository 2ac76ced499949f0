"""The reward model: loaded from a reference and fed (prompt, answer) pairs here, and nowhere else.

Every user of a trained reward model goes through this module: the ranking screen's scorer
(`workbench.ranking.scoring`), GRPO, RLOO, PPO and the rewards dry run (through
`workbench.rewards.setup`), and the merged export of a reward run (`workbench.export.reward`).

Loading. A reference is anything `workbench.run.model_refs.resolve_ref` takes: a reward run's
id, `run:<id>`, `run:<id>/checkpoint-N`, or a path to a sequence-classification model folder or
to a SEQ_CLS adapter. A run must be of method `reward`. An adapter (a LoRA reward run) is put on
its base with its trained score head (saved with the adapter as a module to save) and merged.

Encoding: each pair becomes the tokens TRL's RewardTrainer made of the model's training pairs
(after `methods/kit/pair_data`):
- a conversation, when the prompt is messages or the model was trained on conversations (a
  text prompt is then the user turn, as pair_data made it): prompt + the answer as the
  assistant turn, through the chat template;
- otherwise text: prompt + answer + the end-of-sequence token (unless the answer ends with it).
The score is logit 0 at the last token that is not padding; batches are right-padded.

Whether a model was trained on conversations: for a run (or one of its checkpoints), by its
datasets, as pair_data decided it; for a folder, the `CONVERSATIONAL` key a merged export
writes into its config.json; otherwise, whether its tokenizer has a chat template.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from workbench import models
from workbench.data.errors import DataError
from workbench.data.prompts import Prompt, as_messages, has_chat_template
from workbench.rewards.library import RewardError, completion_text
from workbench.run import layout

NAME = "reward_model"
METHOD = "reward"
CONVERSATIONAL = "workbench_trained_on_conversations"  # a key of a merged export's config.json


# --- Encoding: the one rule ----------------------------------------------------------------------

def encode(tokenizer, prompt: Prompt, answer: Any, conversational: bool) -> list[int]:
    """The token ids of one (prompt, answer) pair, by the rule of the module docstring."""
    text = completion_text(answer)
    if isinstance(prompt, list) or conversational:
        if not has_chat_template(tokenizer):
            raise RewardError("The reward model's tokenizer has no chat template, so it cannot score conversations; "
                              "give text prompts or a reward model with a chat template.")
        messages = as_messages(prompt) + [{"role": "assistant", "content": text}]
        return list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, tools=None)["input_ids"])
    eos = tokenizer.eos_token or ""
    return list(tokenizer(text=prompt + (text if text.endswith(eos) else text + eos))["input_ids"])


class RewardModel:
    """A loaded reward model. `score(prompts, answers)` gives one float per pair; called as
    `model(prompts, completions, **columns)` it is a reward function (with `name` and `weight`)
    for TRL's trainers and `workbench.rewards.combine`."""

    name = __name__ = NAME
    user_defined = False

    def __init__(self, model, tokenizer, conversational: bool, folder: Path | None = None, weight: float = 1.0,
                 batch_size: int = 8):
        self.model, self.tokenizer, self.conversational = model, tokenizer, conversational
        self.folder, self.weight, self.batch_size = folder, weight, max(1, batch_size)

    def encode(self, prompt: Prompt, answer: Any) -> list[int]:
        return encode(self.tokenizer, prompt, answer, self.conversational)

    def score(self, prompts: list, answers: list) -> list[float]:
        import torch

        rows = [self.encode(p, a) for p, a in zip(prompts, answers, strict=True)]
        pad = self.tokenizer.pad_token_id
        device = next(self.model.parameters()).device
        scores: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(rows), self.batch_size):
                chunk = rows[start:start + self.batch_size]
                width = max(len(r) for r in chunk)
                ids = torch.tensor([r + [pad] * (width - len(r)) for r in chunk], device=device)
                mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in chunk], device=device)
                scores.extend(self.model(input_ids=ids, attention_mask=mask).logits[:, 0].float().tolist())
        return scores

    def __call__(self, prompts: list, completions: list, **columns: Any) -> list[float]:
        return self.score(prompts, completions)


# --- Loading -------------------------------------------------------------------------------------

def load_reward_model(project: str, ref: str, dtype: str = "float32", device: str = "cpu",
                      status: Callable[..., None] | None = None, weight: float = 1.0,
                      batch_size: int = 8) -> RewardModel:
    """The reward model `ref` names, in eval mode on `device`, ready to score."""
    folder = reward_model_folder(project, ref)
    model, tokenizer = load_folder(folder, dtype, device, status)
    return RewardModel(model, tokenizer, trained_on_conversations(folder, tokenizer), folder, weight, batch_size)


def reward_model_folder(project: str, ref: str) -> Path:
    """The folder `ref` names, checked to hold a reward model (a run of the reward method, a SEQ_CLS
    adapter, or a model with a score head); RewardError says what to name instead."""
    from workbench.run.model_refs import RefError, resolve_ref

    try:
        folder = Path(resolve_ref(project, ref))
    except RefError as exc:
        raise RewardError(f"Reward model '{ref}': {exc}") from None
    run_dir = run_dir_of(folder)
    if run_dir is not None:
        from workbench.run.spec import JobSpec

        method = JobSpec.load(run_dir).method
        if method != METHOD:
            raise RewardError(f"Reward model '{ref}': run '{run_dir.name}' is a {method} run, not a reward model; "
                              "train one with --method reward and name its id.")
    if models.is_adapter(folder):
        task = json.loads((folder / "adapter_config.json").read_text()).get("task_type")
        if task != "SEQ_CLS":
            raise RewardError(f"Reward model '{ref}' is a {task or 'language model'} adapter, not a reward model: "
                              "name a run of the reward method.")
        return folder
    config = folder / "config.json"
    if not config.exists():
        raise RewardError(f"Reward model '{ref}' is not a model folder (no config.json in {folder}).")
    architectures = json.loads(config.read_text()).get("architectures") or []
    if not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise RewardError(f"Reward model '{ref}' is a {', '.join(architectures) or 'model'} without a score head; "
                          "name a run of the reward method or a sequence-classification model.")
    return folder


def load_folder(folder: Path, dtype: str = "float32", device: str = "cpu",
                status: Callable[..., None] | None = None):
    """(model, tokenizer) of a reward-model folder: a full sequence classifier, or a SEQ_CLS adapter
    merged into its base with its score head. Eval mode, no gradients, on `device`."""
    import torch
    from transformers import AutoModelForSequenceClassification

    torch_dtype = getattr(torch, dtype)
    if models.is_adapter(folder):
        from peft import PeftModel

        base = models.resolve(json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"],
                              status=status)
        model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, dtype=torch_dtype)
        model = PeftModel.from_pretrained(model, folder).merge_and_unload()
        tokenizer = models.load_tokenizer(folder if (folder / "tokenizer_config.json").exists() else base)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch_dtype)
        tokenizer = models.load_tokenizer(folder)
    if model.config.num_labels != 1:
        raise RewardError(f"'{folder}' has {model.config.num_labels} outputs; a reward model has one.")
    model.config.pad_token_id = tokenizer.pad_token_id  # the score is read at the last token that is not padding
    model.requires_grad_(False)
    return model.eval().to(device), tokenizer


def run_dir_of(folder: Path) -> Path | None:
    """The run folder whose output (adapter/, model/) or checkpoint `folder` is, else None."""
    folder = Path(folder)
    if folder.name in layout.OUTPUTS and (folder.parent / layout.SPEC).exists():
        return folder.parent
    if folder.parent.name == layout.CHECKPOINTS and (folder.parent.parent / layout.SPEC).exists():
        return folder.parent.parent
    return None


def trained_on_conversations(folder: Path, tokenizer) -> bool:
    """Whether the model in `folder` learnt from conversations (see the module docstring)."""
    run_dir = run_dir_of(folder)
    if run_dir is not None:
        from workbench.run.spec import JobSpec

        try:
            return spec_trained_on_conversations(JobSpec.load(run_dir))
        except DataError:  # its datasets are gone
            pass
    config = Path(folder) / "config.json"
    if config.exists():
        marked = json.loads(config.read_text()).get(CONVERSATIONAL)
        if isinstance(marked, bool):
            return marked
    return has_chat_template(tokenizer)


def spec_trained_on_conversations(spec) -> bool:
    """pair_data's rule for a reward run: any prompt, chosen or rejected answer of its data is messages.
    DataError when its datasets cannot be read."""
    from workbench.data.prep import read_source

    records = [r for source in spec.train + spec.eval for r in read_source(source)]
    return any(isinstance(r.get(k), list) for r in records for k in ("prompt", "chosen", "rejected"))
