"""Answers from a causal LM, in batches: the one generation path of ranking, evaluation and the rewards' dry run.

Prompts are token ids. A batch is padded on the left, so that every row's answer starts at the same
position (the model's position ids follow the attention mask), and each prompt gets `n` sequences in
the same batch, one KV cache for all (the rows `num_return_sequences` would make; transformers refuses
that option without its own sampling, which draws from one generator for the whole batch). A sequence ends at its first stop token
(its later positions are padding); the batch ends when every sequence has ended, at `max_new_tokens`,
or when `stop()` says so.

Sampling draws each sequence's tokens from its own generator, seeded from its prompt's seed and its
number within the prompt, so that a sequence does not depend on the prompts that share its batch: the
same seed gives the same answers one prompt at a time or eight at once. The draw happens in a logits
processor that leaves only the drawn token finite, and generation then takes it greedily; temperature,
top-k and top-p are transformers' own warpers, in transformers' order. Greedy decoding needs no seed.
Heavy imports happen inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

ROW_SEED_STEP = 0x9E3779B97F4A7C15  # spreads the seeds of a prompt's sequences over the 64-bit range


@dataclass(frozen=True)
class Sampling:
    """How tokens are drawn; top_k 0 and top_p 1.0 keep every token."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0


def row_seed(seed: int, number: int) -> int:
    """The seed of sequence `number` of a prompt whose seed is `seed`."""
    return (seed + number * ROW_SEED_STEP) % 2**64


def generate(model, prompts: list[list[int]], max_new_tokens: int, *, pad_id: int, stop_ids: Iterable[int],
             n: int = 1, sampling: Sampling | None = None, seeds: list[int] | None = None,
             stop: Callable[[], bool] | None = None) -> list[list[list[int]]]:
    """For each prompt (token ids), its `n` answers as token ids, each cut after its first stop token
    (kept). Greedy without `sampling`; with it, `seeds` gives one seed per prompt."""
    import torch
    from transformers import (
        GenerationConfig,
        LogitsProcessorList,
        StoppingCriteria,
        StoppingCriteriaList,
    )

    if not prompts:
        return []
    stops = sorted(set(stop_ids))
    if sampling is not None and (seeds is None or len(seeds) != len(prompts)):
        raise ValueError("Sampling needs one seed per prompt.")
    device = next(model.parameters()).device
    width = max(len(p) for p in prompts)
    rows = [p for p in prompts for _ in range(n)]  # a prompt's n sequences side by side, as num_return_sequences
    ids = torch.tensor([[pad_id] * (width - len(p)) + list(p) for p in rows], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in rows], device=device)

    processors = LogitsProcessorList()
    if sampling is not None:
        generators = []
        for seed in seeds:
            for number in range(n):
                generator = torch.Generator(device=device)
                generator.manual_seed(row_seed(seed, number))
                generators.append(generator)
        processors.append(_row_sampler(sampling, generators))

    class StopAsked(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), bool(stop()), dtype=torch.bool, device=input_ids.device)

    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=stops, pad_token_id=pad_id)
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config,
                             logits_processor=processors,
                             stopping_criteria=StoppingCriteriaList([StopAsked()] if stop else []))
    answers = [_cut(row, stops) for row in out[:, width:].tolist()]
    return [answers[i * n:(i + 1) * n] for i in range(len(prompts))]


def cut_short(answer: list[int], max_new_tokens: int, stop_ids: Iterable[int]) -> bool:
    """Whether `generate` ended this answer at the token limit, before the model ended it with a stop token."""
    return len(answer) >= max_new_tokens and (not answer or answer[-1] not in set(stop_ids))


def _cut(row: list[int], stops: list[int]) -> list[int]:
    end = next((i + 1 for i, token in enumerate(row) if token in stops), len(row))
    return row[:end]


def _row_sampler(sampling: Sampling, generators: list):
    """A logits processor that draws row i's next token with generator i and returns scores in which
    only that token is finite."""
    import torch
    from transformers import (
        LogitsProcessor,
        LogitsProcessorList,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    warpers = LogitsProcessorList([TemperatureLogitsWarper(sampling.temperature)])
    if sampling.top_k > 0:
        warpers.append(TopKLogitsWarper(sampling.top_k))
    if sampling.top_p < 1.0:
        warpers.append(TopPLogitsWarper(sampling.top_p))

    class RowSampler(LogitsProcessor):
        def __call__(self, input_ids, scores):
            if scores.shape[0] != len(generators):
                raise ValueError(f"{scores.shape[0]} rows to sample for {len(generators)} generators.")
            probs = torch.softmax(warpers(input_ids, scores), dim=-1)
            drawn = torch.stack([torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(generators)])
            return torch.full_like(scores, float("-inf")).scatter_(1, drawn, 0.0)

    return RowSampler()
