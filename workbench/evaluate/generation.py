"""The model side of an evaluation: load a model, answer prompts in batches, measure likelihoods.

Every prompt is rendered through the model's chat template (plain turns joined by new lines for a
model without one). Generation is greedy and batched: prompts of similar length together, padded on
the left so that every row's answer starts at the same position. Loss is the mean negative
log-likelihood of the reference answer's tokens (the rendered conversation's tokens after the
rendered prompt), as SFT learns them; the forgetting watch's perplexity reads a plain text in
windows. Heavy imports happen inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from workbench import locations, models
from workbench.data.prompts import has_chat_template

StatusFn = Callable[[str], None]
WINDOW = 512  # tokens of the forgetting text read at once


def load(project: str, base_model: str, run_id: str, device: str, dtype: str, status: StatusFn):
    """(model, tokenizer, label) of the project's base model (`run_id` empty) or of a run's trained weights
    (its adapter merged into its base, or its full model; a stopped run's latest checkpoint)."""
    import torch
    from transformers import AutoModelForCausalLM

    def say(message: str, progress: float | None = None) -> None:
        status(message)

    torch_dtype = getattr(torch, dtype)
    if not run_id:
        base = models.resolve(base_model, status=say)
        status(f"Loading {models.describe(base_model)}")
        return (models.load_causal_lm(base, dtype, device).eval(), models.load_tokenizer(base),
                models.describe(base_model))

    from workbench.jobs.store import trained_weights
    from workbench.run.spec import JobSpec

    folder, is_adapter = trained_weights(project, run_id)
    spec = JobSpec.load(locations.run_dir(project, run_id))
    base = models.resolve(spec.model_path or spec.base_model, status=say)
    tokenizer = models.load_tokenizer(folder if (folder / "tokenizer_config.json").exists() else base)
    label = f"{models.describe(spec.base_model)} + {run_id}/{folder.name}"
    if not is_adapter:
        status(f"Loading the fine-tuned model from {folder}")
        return AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype).to(device).eval(), tokenizer, label
    from peft import PeftModel

    status(f"Loading {models.describe(spec.base_model)} with the adapter from {folder.name}")
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype)
    return PeftModel.from_pretrained(model, folder).merge_and_unload().to(device).eval(), tokenizer, label


def render(tokenizer, messages: list[dict], answer: str | None = None) -> str:
    """The prompt as the model reads it, ready for its answer; with `answer`, the whole conversation."""
    if has_chat_template(tokenizer):
        if answer is None:
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": answer}], tokenize=False)
    text = "\n".join(m["content"] for m in messages) + "\n"
    return text if answer is None else text + answer + (tokenizer.eos_token or "")


def by_length(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices of `lengths` in batches of similar length (shortest first)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i:i + batch_size] for i in range(0, len(order), max(1, batch_size))]


def generate(model, tokenizer, prompts: list[list[dict]], max_new_tokens: int, batch_size: int = 8,
             progress: Callable[[int], None] | None = None) -> list[str]:
    """Greedy answers, in the order of `prompts`, in batches of similar length (`workbench.generate`,
    left-padded, each answer ending at EOS). `progress(n)` after each batch of n."""
    return generate_marked(model, tokenizer, prompts, max_new_tokens, batch_size, progress)[0]


def generate_marked(model, tokenizer, prompts: list[list[dict]], max_new_tokens: int, batch_size: int = 8,
                    progress: Callable[[int], None] | None = None) -> tuple[list[str], list[bool]]:
    """(`generate`'s answers, whether each was cut: the token limit ended it before the model did)."""
    from workbench.generate import cut_short
    from workbench.generate import generate as generate_ids

    ids = [tokenizer(render(tokenizer, p), add_special_tokens=False)["input_ids"] for p in prompts]
    answers: list[str] = [""] * len(ids)
    cut = [False] * len(ids)
    for chunk in by_length([len(i) for i in ids], batch_size):
        out = generate_ids(model, [ids[i] for i in chunk], max_new_tokens, pad_id=tokenizer.pad_token_id,
                           stop_ids=[tokenizer.eos_token_id])
        for i, (tokens,) in zip(chunk, out):
            answers[i] = tokenizer.decode(tokens, skip_special_tokens=True).strip()
            cut[i] = cut_short(tokens, max_new_tokens, [tokenizer.eos_token_id])
        if progress:
            progress(len(chunk))
    return answers, cut


def answer_tokens(tokenizer, prompt: list[dict], answer: str) -> tuple[list[int], int]:
    """(the conversation's token ids, how many of them are the prompt's): the rest is the answer."""
    head = tokenizer(render(tokenizer, prompt), add_special_tokens=False)["input_ids"]
    whole = tokenizer(render(tokenizer, prompt, answer), add_special_tokens=False)["input_ids"]
    if whole[:len(head)] != head:  # a template that renders the prompt differently once answered
        whole = head + tokenizer(answer + (tokenizer.eos_token or ""), add_special_tokens=False)["input_ids"]
    return whole, len(head)


def answer_nll(model, tokenizer, prompts: list[list[dict]], answers: list[str], batch_size: int = 8,
               progress: Callable[[int], None] | None = None) -> tuple[float, int]:
    """(total negative log-likelihood in nats, number of tokens) of `answers` after their `prompts`."""
    rows = [answer_tokens(tokenizer, p, a) for p, a in zip(prompts, answers, strict=True)]
    total, count = 0.0, 0
    for chunk in by_length([len(ids) for ids, _ in rows], batch_size):
        nll, n = _nll([rows[i] for i in chunk], model, tokenizer.pad_token_id)
        total, count = total + nll, count + n
        if progress:
            progress(len(chunk))
    return total, count


def _nll(rows: list[tuple[list[int], int]], model, pad: int) -> tuple[float, int]:
    """Summed NLL of the tokens after each row's first `start` ones; rows right-padded."""
    import torch

    device = next(model.parameters()).device
    width = max(len(ids) for ids, _ in rows)
    ids = torch.tensor([r + [pad] * (width - len(r)) for r, _ in rows], device=device)
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r, _ in rows], device=device)
    labels = torch.full_like(ids, -100)
    for i, (r, start) in enumerate(rows):
        labels[i, start:len(r)] = ids[i, start:len(r)]
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    targets = labels[:, 1:]
    losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, ignore_index=-100, reduction="sum")
    return float(losses), int((targets != -100).sum())


def text_nll(model, tokenizer, text: str, window: int = WINDOW) -> tuple[float, int]:
    """(total NLL in nats, tokens predicted) of `text`, read in windows of `window` tokens."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if tokenizer.bos_token_id is not None:
        ids = [tokenizer.bos_token_id] + ids
    total, count = 0.0, 0
    for start in range(0, max(len(ids) - 1, 1), window):
        piece = ids[start:start + window + 1]
        if len(piece) < 2:
            break
        nll, n = _nll([(piece, 0)], model, tokenizer.pad_token_id or 0)
        total, count = total + nll, count + n
    return total, count


def forgetting_text() -> str:
    """The fixed plain English text of the forgetting watch (shipped with the package)."""
    return (Path(__file__).with_name("english.txt")).read_text(encoding="utf-8")


def auto_max_new_tokens(tokenizer, references: list[str | None]) -> int:
    """Room for the longest reference answer and half as much again (256 when there is none), at most 512."""
    lengths = [len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in references if r is not None]
    if not lengths:
        return 256
    return min(512, max(lengths) * 3 // 2 + 8)
