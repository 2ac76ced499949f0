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

The transformers side (tokenizer, model, its log-probabilities on the fixed texts) does not
depend on the GGUF: it is computed once per model folder and token ids (`reference`) and
shared by every file of an export; `prefetch` starts it in a thread while the converter runs.
The chat check runs on a context without all-position logits (generation with them costs
several times as much).

The report goes next to the file as `<file>.verify.toml`, with the seconds of each phase.
Heavy imports happen inside the functions that need them.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
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


def reference_side(ref_logits: np.ndarray, ids) -> dict:
    """What `compare_to` needs of the reference model's logits on one text, computed once:
    its probabilities, their negative entropy per position, its top-1 ids and target log-probs."""
    logp = log_softmax(ref_logits)
    p = np.exp(logp)
    return {"p": p, "negentropy": np.einsum("ij,ij->i", p, logp), "top1": np.argmax(logp, axis=-1),
            "lp": target_logprobs(logp, ids)}


def compare_to(ref: dict, test_logits: np.ndarray, ids) -> dict:
    """Per-position figures of one text: what `verify_gguf` pools over all texts.
    KL(P_ref || P_test) = sum p log p - sum p log q, the first term from `reference_side`."""
    logp_test = log_softmax(test_logits)
    return {
        "kl": ref["negentropy"] - np.einsum("ij,ij->i", ref["p"], logp_test),
        "top1": ref["top1"] == np.argmax(logp_test, axis=-1),
        "lp_ref": ref["lp"],
        "lp_test": target_logprobs(logp_test, ids),
    }


def compare(ref_logits: np.ndarray, test_logits: np.ndarray, ids) -> dict:
    return compare_to(reference_side(ref_logits, ids), test_logits, ids)


# ---- the reference: the transformers model on the fixed texts, once per folder ----

@dataclass
class Reference:
    """The transformers model's side of a verification, shared by every GGUF of one export."""

    folder: Path
    texts: list[str]
    ids: list[list[int]]
    sides: list[dict]  # `reference_side` of each text
    seconds: dict[str, float] = field(default_factory=dict)  # of its phases, when it was computed


_lock = threading.Lock()  # one computation at a time: a caller waits for the one in flight
_tokenizers: dict[tuple, object] = {}  # the tokenizer of the last folder
_references: dict[tuple, Reference] = {}  # the last reference: (folder, token ids) -> Reference


def _signature(folder: Path) -> tuple:
    """A folder as a cache key: its path and its files' sizes and times (a rewritten folder is new)."""
    folder = Path(folder).resolve()
    return (str(folder), tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                                      for p in folder.iterdir() if p.is_file())))


def reference(folder: Path, texts: list[str] | None = None, n_threads: int | None = None) -> Reference:
    """The reference of `folder` on `texts` (the built-in ones by default), computed on first use
    (tokenizer, model in float32, log-probabilities) and kept for the next file of the export."""
    n_threads = n_threads or os.cpu_count() or 1
    with _lock:
        seconds: dict[str, float] = {}
        started = time.perf_counter()
        key = _signature(folder)
        if key not in _tokenizers:
            _tokenizers.clear()
            _tokenizers[key] = models.load_tokenizer(folder)
            seconds["tokenizer"] = time.perf_counter() - started
        tokenizer = _tokenizers[key]
        texts = list(texts) if texts is not None else _builtin_texts(tokenizer)
        ids = [list(tokenizer(text)["input_ids"]) for text in texts]
        ref_key = (key, tuple(tuple(i) for i in ids))
        if ref_key not in _references:
            logits = _hf_logits(folder, ids, n_threads, seconds)
            mark = time.perf_counter()
            sides = [reference_side(lg, i) for lg, i in zip(logits, ids)]
            seconds["reference_side"] = time.perf_counter() - mark
            _references.clear()
            _references[ref_key] = Reference(Path(folder), texts, ids, sides,
                                             {k: round(v, 2) for k, v in seconds.items()})
        return _references[ref_key]


def prefetch(folder: Path, n_threads: int | None = None) -> threading.Thread:
    """Start computing `reference(folder)` in a thread (while the converter runs); the caller of
    `reference` waits for it. A failure here is left for that call to raise. It takes half the
    cores by default, the converter the rest: on 2 busy cores, torch on both took 16 s for the
    forward that one thread did in 2-4 s (its threads, too, wait for each other)."""
    n_threads = n_threads or max(1, (os.cpu_count() or 1) // 2)

    def work() -> None:
        try:
            reference(folder, n_threads=n_threads)
        except Exception:  # noqa: BLE001 - the verification calls `reference` again and reports it
            pass

    thread = threading.Thread(target=work, name="gguf-reference", daemon=True)
    thread.start()
    return thread


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
    `n_threads` (default: all cores) is torch's; llama.cpp gets `llama_threads(n_threads)`.
    """
    status = status or (lambda message, progress=None: None)
    started = time.perf_counter()
    gguf_path, hf_folder = Path(gguf_path), Path(hf_folder)
    n_threads = n_threads or os.cpu_count() or 1
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 2)
        return now

    status("Running the transformers model on the fixed text (once per export)")
    ref = reference(hf_folder, texts, n_threads)
    mark = lap("reference", started)
    status("Loading the GGUF file in llama.cpp")
    n_ctx = max(len(i) for i in ref.ids) + 16
    llm = _load_llama(gguf_path, lora_base_gguf, n_ctx, n_threads, logits_all=True)
    mark = lap("gguf_load", mark)
    status("Running llama.cpp on the same tokens")
    parts = [compare_to(side, _llama_logits(llm, i), i) for side, i in zip(ref.sides, ref.ids)]
    same_ids = [llm.tokenize(t.encode("utf-8"), add_bos=True, special=True) == i for t, i in zip(ref.texts, ref.ids)]
    llm.close()
    mark = lap("gguf_eval", mark)
    status("Chat check: the embedded template must end a turn on its own")
    llm = _load_llama(gguf_path, lora_base_gguf, n_ctx, n_threads, logits_all=False)
    chat = _chat_check(llm, require_stop)
    llm.close()
    lap("chat", mark)

    report = _report(parts, same_ids, chat, quant_type)
    report.update(file=str(gguf_path), hf_folder=str(hf_folder), seconds=round(time.perf_counter() - started, 1))
    if lora_base_gguf is not None:
        report["lora_base"] = str(lora_base_gguf)
    report["timings"] = dict(timings, **{f"reference_{k}": v for k, v in ref.seconds.items()})
    ref.seconds = {}  # what it cost is reported once, by the first file that used it
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


def _hf_logits(folder: Path, ids: list[list[int]], n_threads: int, seconds: dict) -> list[np.ndarray]:
    mark = time.perf_counter()
    import torch

    torch.set_num_threads(n_threads)
    seconds["torch_import"] = time.perf_counter() - mark
    mark = time.perf_counter()
    model = models.load_causal_lm(folder, dtype="float32").eval()
    seconds["model_load"] = time.perf_counter() - mark
    mark = time.perf_counter()
    with torch.inference_mode():
        logits = [model(torch.tensor([i])).logits[0].float().numpy() for i in ids]
    seconds["forward"] = time.perf_counter() - mark
    return logits


def llama_threads(n_threads: int) -> int:
    """llama.cpp's threads: half the logical cores (its own default, one per physical core, where
    each core runs two). Its threads wait for each other at every operation, so when the machine
    is busy a thread the system has set aside stalls the others: on 2 busy cores, one thread read the fixed text in
    3-4 s where two took 10 s, and generated 2-3 times as fast."""
    return max(1, n_threads // 2)


def _load_llama(gguf_path: Path, lora_base: Path | None, n_ctx: int, n_threads: int, logits_all: bool):
    from llama_cpp import Llama

    n_ctx = max(n_ctx, 512)
    threads = llama_threads(n_threads)
    common = dict(logits_all=logits_all, n_ctx=n_ctx, n_batch=n_ctx, n_threads=threads, n_threads_batch=threads,
                  verbose=False)
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
