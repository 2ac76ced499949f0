"""Check a GGUF file against the transformers model it came from.

Both models read the same token ids (the Hugging Face tokenizer's, on fixed text), and
per position we compare their next-token distributions: top-1 agreement and
KL(P_hf || P_gguf), plus each model's perplexity on the text. Greedy text equality is
not used: a quantized file may pick another near-tied token and then drift, while its
distributions stay close. Whether llama.cpp's own tokenizer gives the same ids is
reported as a separate figure.

A chat check follows: a few prompts through `create_chat_completion` with the chat
template embedded in the GGUF must end on their own (finish_reason "stop") within
`CHAT_MAX_TOKENS`. A random, untrained model never stops by itself, so callers that
verify one (the tiny test model) pass `require_stop=False`: the count is reported but
does not decide the verdict.

The report goes next to the file as `<file>.verify.toml`. Heavy imports happen inside
the functions that need them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from workbench import files, models

# (minimum top-1 agreement, maximum mean KL in nats) per GGUF type, against the
# float32 transformers model. Measured on SmolLM2-135M-Instruct over the built-in
# texts (380 positions), llama-cpp-python 0.3.36:
#   F16    top-1 1.000, KL 0.000005     BF16   top-1 0.992, KL 0.00015
#   Q8_0   top-1 0.971, KL 0.0044       Q6_K   top-1 0.955, KL 0.012
#   Q5_K_M top-1 0.876, KL 0.087        Q4_K_M top-1 0.887, KL 0.059
# Float types must be near-exact (the bounds the export issue asks for). A quantized
# bound allows about twice the measured KL and a top-1 3 to 5 standard errors (380
# positions) under the measured one, since another fine-tune of the same size shifts
# the figures a little; a broken conversion or a wrong pairing gives distributions
# unrelated to the reference. Small models suffer most from quantization, and
# SmolLM2's width (576) is no multiple of 256, so llama.cpp stores most of its K-quant
# tensors in older types (Q5_0, Q8_0...): likely why Q5_K_M is no better than Q4_K_M.
THRESHOLDS: dict[str, tuple[float, float]] = {
    "F32": (0.99, 0.001),
    "F16": (0.99, 0.001),
    "BF16": (0.99, 0.001),
    "Q8_0": (0.94, 0.01),
    "Q6_K": (0.91, 0.025),
    "Q5_K_M": (0.80, 0.2),
    "Q4_K_M": (0.80, 0.15),
}

CHAT_MAX_TOKENS = 64
CHAT_PROMPTS = [
    "What is the capital of France? Answer in one short sentence.",
    "Say hello in one word.",
    "Is water wet? Answer yes or no.",
]

PROSE = """\
The old lighthouse keeper climbed the spiral stairs every evening at dusk, counting the \
one hundred and twelve steps out of habit rather than necessity. From the lantern room he \
could see the fishing boats returning to the harbour, their hulls low with the day's catch, \
and beyond them the grey line where the sea met the sky.

Photosynthesis converts light energy into chemical energy. In the chloroplasts of plant \
cells, chlorophyll absorbs mostly blue and red light; water is split, oxygen is released, \
and the energy is stored in molecules of glucose that the plant later uses to grow.

To install the package, run `pip install requests`, then call requests.get(url, timeout=10) \
and check response.status_code before reading response.json(). In 2023 the library was \
downloaded more than 500 million times, about 1.4 million times a day.

Dear Ms. Alvarez, thank you for your letter of 14 March. We regret that the order (ref. \
A-2291) was delayed; a replacement has been shipped and should arrive within five working \
days. Please let us know if there is anything else we can do.

def fibonacci(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
"""

CHAT_EXCHANGE = [
    {"role": "system", "content": "You are a helpful assistant who answers briefly."},
    {"role": "user", "content": "How many legs does a spider have, and are spiders insects?"},
    {"role": "assistant", "content": "A spider has eight legs. Spiders are not insects: they are "
                                     "arachnids, and insects have six legs."},
    {"role": "user", "content": "Thanks! Name one other arachnid."},
    {"role": "assistant", "content": "Scorpions are arachnids too."},
]


# ---- metrics: plain numpy, arrays of shape (positions, vocab) ----

def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def kl_per_position(logp_ref: np.ndarray, logp_test: np.ndarray) -> np.ndarray:
    """KL(P_ref || P_test) in nats at each position, from log-probabilities."""
    return (np.exp(logp_ref) * (logp_ref - logp_test)).sum(axis=-1)


def top1_agreement(logits_a: np.ndarray, logits_b: np.ndarray) -> float:
    """The fraction of positions where both models rank the same token first."""
    return float((np.argmax(logits_a, axis=-1) == np.argmax(logits_b, axis=-1)).mean())


def target_logprobs(logp: np.ndarray, ids) -> np.ndarray:
    """log P(next token) at each position that has a next token."""
    ids = np.asarray(ids)
    return logp[np.arange(len(ids) - 1), ids[1:]]


def perplexity(token_logprobs: np.ndarray) -> float:
    return float(np.exp(-np.mean(token_logprobs)))


def compare(ref_logits: np.ndarray, test_logits: np.ndarray, ids) -> dict:
    """Per-position figures of one text: what `verify_gguf` pools over all texts."""
    logp_ref, logp_test = log_softmax(ref_logits), log_softmax(test_logits)
    return {
        "kl": kl_per_position(logp_ref, logp_test),
        "top1": np.argmax(ref_logits, axis=-1) == np.argmax(test_logits, axis=-1),
        "lp_ref": target_logprobs(logp_ref, ids),
        "lp_test": target_logprobs(logp_test, ids),
    }


# ---- the verification ----

def report_path(gguf_path: Path) -> Path:
    gguf_path = Path(gguf_path)
    return gguf_path.with_name(gguf_path.name + ".verify.toml")


def verify_gguf(gguf_path: Path, hf_folder: Path, quant_type: str, lora_base_gguf: Path | None = None,
                texts: list[str] | None = None, status=None, require_stop: bool = True,
                n_threads: int | None = None) -> dict:
    """Compare `gguf_path` with the transformers model in `hf_folder`; write and return the report.

    For an adapter GGUF, `lora_base_gguf` is the base model's GGUF and `hf_folder` the
    merged model; `quant_type` is then the type of the base GGUF. `require_stop=False`
    reports the chat check without letting it decide (for untrained test models).
    `n_threads` (default: all cores) is used by both torch and llama.cpp.
    """
    status = status or (lambda message, progress=None: None)
    started = time.perf_counter()
    gguf_path, hf_folder = Path(gguf_path), Path(hf_folder)
    n_threads = n_threads or os.cpu_count() or 1
    tokenizer = models.load_tokenizer(hf_folder)
    texts = list(texts) if texts is not None else _builtin_texts(tokenizer)
    ids = [tokenizer(text)["input_ids"] for text in texts]

    status("Running the transformers model on the fixed text")
    hf_logits = _hf_logits(hf_folder, ids, n_threads)
    status("Loading the GGUF file in llama.cpp")
    llm = _load_llama(gguf_path, lora_base_gguf, max(len(i) for i in ids) + 16, n_threads)
    status("Running llama.cpp on the same tokens")
    parts = [compare(ref, _llama_logits(llm, i), i) for ref, i in zip(hf_logits, ids)]
    same_ids = [llm.tokenize(t.encode("utf-8"), add_bos=True, special=True) == i for t, i in zip(texts, ids)]
    status("Chat check: the embedded template must end a turn on its own")
    chat = _chat_check(llm, require_stop)
    del llm

    report = _report(parts, same_ids, chat, quant_type)
    report.update(file=str(gguf_path), hf_folder=str(hf_folder), seconds=round(time.perf_counter() - started, 1))
    if lora_base_gguf is not None:
        report["lora_base"] = str(lora_base_gguf)
    files.write_toml(report_path(gguf_path), report)
    return report


def _report(parts: list[dict], same_ids: list[bool], chat: dict, quant_type: str) -> dict:
    quant_type = quant_type.upper()
    kl = np.concatenate([p["kl"] for p in parts])
    top1 = float(np.concatenate([p["top1"] for p in parts]).mean())
    dist = {
        "positions": int(kl.size),
        "top1": round(top1, 4),
        "kl_mean": _figure(kl.mean()),
        "kl_max": _figure(kl.max()),
        "ppl_hf": round(perplexity(np.concatenate([p["lp_ref"] for p in parts])), 3),
        "ppl_gguf": round(perplexity(np.concatenate([p["lp_test"] for p in parts])), 3),
    }
    threshold = THRESHOLDS.get(quant_type)
    dist_ok = threshold is None or (top1 >= threshold[0] and float(kl.mean()) < threshold[1])
    chat_ok = not chat["required"] or chat["stopped"] == chat["prompts"]
    passed = dist_ok and chat_ok
    tokens = {"texts": len(same_ids), "same_ids": sum(same_ids), "match": all(same_ids)}

    verdict = "passed" if passed else "FAILED"
    if threshold is None:
        verdict += f" (no threshold for {quant_type}: figures only)"
    chat_note = "" if chat["required"] else " (not required)"
    token_note = "" if tokens["match"] else f", llama.cpp tokenizer differs on {len(same_ids) - sum(same_ids)} text(s)"
    summary = (f"{quant_type}: top-1 {dist['top1']:.3f}, KL {dist['kl_mean']:.4g}, "
               f"ppl {dist['ppl_gguf']:.2f} vs {dist['ppl_hf']:.2f}, "
               f"chat {chat['stopped']}/{chat['prompts']} stopped{chat_note}{token_note} — {verdict}")
    return {
        "passed": passed,
        "summary": summary,
        "quant_type": quant_type,
        "thresholds": ({"top1_min": threshold[0], "kl_mean_max": threshold[1]} if threshold
                       else {"note": "no threshold"}),
        "distribution": dist,
        "tokenizer": tokens,
        "chat": chat,
    }


def _figure(value) -> float:
    """Four significant digits: enough to read, and a tiny KL does not round to 0."""
    return float(f"{float(value):.4g}")


def _builtin_texts(tokenizer) -> list[str]:
    texts = [PROSE]
    if tokenizer.chat_template:
        texts.append(tokenizer.apply_chat_template(CHAT_EXCHANGE, tokenize=False))
    return texts


def _hf_logits(folder: Path, ids: list[list[int]], n_threads: int) -> list[np.ndarray]:
    import torch

    torch.set_num_threads(n_threads)
    model = models.load_causal_lm(folder, dtype="float32").eval()
    with torch.inference_mode():
        return [model(torch.tensor([i])).logits[0].float().numpy() for i in ids]


def _load_llama(gguf_path: Path, lora_base: Path | None, n_ctx: int, n_threads: int):
    from llama_cpp import Llama

    n_ctx = max(n_ctx, 512)
    common = dict(logits_all=True, n_ctx=n_ctx, n_batch=n_ctx, n_threads=n_threads, verbose=False)
    if lora_base is not None:
        return Llama(model_path=str(lora_base), lora_path=str(gguf_path), **common)
    return Llama(model_path=str(gguf_path), **common)


def _llama_logits(llm, ids: list[int]) -> np.ndarray:
    llm.reset()
    llm.eval(ids)
    return np.array(llm.scores[: len(ids)], dtype=np.float32)


def _chat_check(llm, required: bool) -> dict:
    reasons = []
    for prompt in CHAT_PROMPTS:
        llm.reset()
        out = llm.create_chat_completion(messages=[{"role": "user", "content": prompt}],
                                         max_tokens=CHAT_MAX_TOKENS, temperature=0.0)
        reasons.append(out["choices"][0]["finish_reason"] or "none")
    return {"prompts": len(reasons), "stopped": reasons.count("stop"), "required": required,
            "max_tokens": CHAT_MAX_TOKENS, "finish_reasons": reasons}
