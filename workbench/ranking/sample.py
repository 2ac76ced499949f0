"""A sampling session: groups of candidate answers for a person (or a judge) to rank.

The recipe: params -> prompts -> model(s) -> loop. Each turn of the loop samples one batch of up
to `prompt_batch` prompts (`workbench.generate`: a group's candidates are rows of the same batch,
each ending at its own stop token): resample requests first, then the next prompts unless the
ranking is `ahead` groups behind, in which case it waits. Each group is appended to
`candidates.jsonl` as soon as its batch ends (see `workbench.ranking.candidates` for the files). Once every prompt has a group the sampler keeps
serving resample requests until every prompt of the session is ranked or skipped; it also
ends when `idle_minutes` pass with nothing ranked and nothing asked (a person who walked away
should not hold the model's memory). Both end as completed; a stop ends it at once.
`candidates.session_done` tells the ranking screen that every prompt has its candidates.

With `model_b` set, each group is a blind A/B pair: one answer from each model, in a seeded
random order, each candidate's `source` naming its model.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any

from workbench import locations, models
from workbench import params as params_mod
from workbench.data.errors import DataError
from workbench.data.prep import read_source
from workbench.data.prompts import as_messages, prompt_of
from workbench.data.render import stop_token_ids
from workbench.generate import Sampling, cut_short, generate
from workbench.methods.kit.train_args import dtype_name
from workbench.ranking import candidates as cands
from workbench.ranking.sample_params import AUTO, SampleParams
from workbench.run import events as ev
from workbench.run.context import JobContext
from workbench.run.events import JsonlTail
from workbench.run.model_refs import resolve_ref
from workbench.run.spec import JobSpec

POLL_SECONDS = 0.25
TOP_K = 50  # transformers' default when sampling, which the candidates have always been drawn with


# --- Prompts --------------------------------------------------------------------------------------

def session_prompts(spec: JobSpec, p: SampleParams) -> list[Any]:
    """The session's prompts (`workbench.data.prompts.prompt_of`, text kept as text: the sampler renders it
    for its model): each distinct prompt once, in the datasets' order or shuffled, then cut."""
    seen: set[str] = set()
    prompts = []
    for source in spec.train:
        for record in read_source(source):
            prompt = prompt_of(record)
            key = json.dumps(prompt, sort_keys=True, ensure_ascii=False)
            if key not in seen:
                seen.add(key)
                prompts.append(prompt)
    if p.shuffle:
        random.Random(p.seed).shuffle(prompts)
    if p.prompts:
        prompts = prompts[:p.prompts]
    if not prompts:
        raise DataError("The chosen datasets hold no prompt to sample from.")
    return prompts


# --- A model that samples ----------------------------------------------------------------------------

class Sampler:
    """One model and its tokenizer; prompts go through the chat template as a generation prompt."""

    def __init__(self, folder: Path, label: str, dtype: str, device: str):
        self.label = label
        self.tokenizer = models.load_tokenizer(folder)
        self.model = models.load_causal_lm(folder, dtype, device).eval()
        self.stop_ids = stop_token_ids(self.tokenizer, folder)

    def encode(self, prompt: Any) -> list[int]:
        tokenizer = self.tokenizer
        if tokenizer.chat_template:
            return list(tokenizer.apply_chat_template(as_messages(prompt), add_generation_prompt=True,
                                                      return_dict=True)["input_ids"])
        if not isinstance(prompt, str):
            raise DataError(f"{self.label} has no chat template, so it cannot answer conversations; "
                            "sample from text prompts or use a chat model.")
        return tokenizer(prompt)["input_ids"]

    def sample(self, prompts: list[Any], count: int, p: SampleParams, seeds: list[int],
               stop) -> list[tuple[list[dict[str, Any]], int]]:
        """Per prompt, (`count` sampled answers as candidates, tokens generated), all prompts in one batch;
        `stop()` ends generation early. An answer the token limit ended, not a stop token, is marked `cut`."""
        groups = generate(self.model, [self.encode(q) for q in prompts], p.max_new_tokens, n=count,
                          pad_id=self.tokenizer.pad_token_id, stop_ids=self.stop_ids,
                          sampling=Sampling(p.temperature, p.top_p, TOP_K), seeds=seeds, stop=stop)
        return [([cands.candidate(text.strip(), self.label, cut_short(row, p.max_new_tokens, self.stop_ids))
                  for text, row in zip(self.tokenizer.batch_decode(ids, skip_special_tokens=True), ids)],
                 sum(len(i) for i in ids)) for ids in groups]


def group_seed(seed: int, index: int, round_: int) -> int:
    """A seed per (prompt, round): a session can be repeated, and each resample differs."""
    return (seed * 1_000_003 + index * 1_009 + round_) % (2 ** 63)


def load_samplers(spec: JobSpec, p: SampleParams, job: JobContext) -> list[Sampler]:
    refs = [p.model] + ([p.model_b] if p.model_b.strip() else [])
    if len(refs) == 2 and refs[0].strip() == refs[1].strip():
        raise DataError(f"model and model_b both name '{refs[0]}'; an A/B session compares two models.")
    dtype, device = dtype_name(spec.runtime), spec.runtime.device
    out = []
    for ref in refs:
        base = resolve_ref(spec.project, ref)
        folder = models.resolve(base, status=job.status)
        if not out:
            spec.model_path = str(folder)
        job.status(f"Loading {models.describe(base)}")
        out.append(Sampler(folder, cands.model_label(ref), dtype, device))
        job.check_stop()
    if len(out) == 2 and out[0].label == out[1].label:
        out[1].label += " (B)"
    return out


def resolve_auto(p: SampleParams, spec: JobSpec) -> None:
    """Fill in `0 = auto` for this device, in the params and in job.toml with a note."""
    device = "cuda" if spec.runtime.device == "cuda" else "cpu"
    max_new_tokens, prompt_batch = AUTO[device]
    chosen = []
    if not p.max_new_tokens:
        p.max_new_tokens = spec.params["max_new_tokens"] = max_new_tokens
        chosen.append(f"max_new_tokens={max_new_tokens}")
    if not p.prompt_batch:
        p.prompt_batch = spec.params["prompt_batch"] = prompt_batch
        chosen.append(f"prompt_batch={prompt_batch}")
    if chosen:
        spec.notes.append(f"Sampling on the {'GPU' if device == 'cuda' else 'CPU'}: {', '.join(chosen)} (auto).")


def leave_a_core(spec: JobSpec) -> None:
    """On the CPU, sample with one core fewer than the machine has (at least one thread): the ranking
    screen reads the groups beside it, and two threads on two busy cores decode several times slower
    than one (bench/RESULTS.md). Sessions take no runtime settings, so this overrides no one's choice."""
    import torch

    if spec.runtime.device != "cpu":
        return
    threads = max(1, min(spec.runtime.threads or torch.get_num_threads(), (os.cpu_count() or 1) - 1))
    if threads != spec.runtime.threads:
        torch.set_num_threads(threads)
        spec.notes.append(f"Sampling on the CPU with {threads} thread(s) of {os.cpu_count()} cores: a core is "
                          "left to the ranking screen.")
        spec.runtime.threads = threads


def make_groups(samplers: list[Sampler], prompts: list[Any], indices: list[int], rounds: list[int],
                p: SampleParams, job: JobContext) -> tuple[list[list[dict[str, Any]]], int]:
    """(a group per prompt, tokens): n answers of one model, or one from each of two in a seeded order;
    the prompts sampled together, each with the seed of its (index, round)."""
    seeds = [group_seed(p.seed, index, round_) for index, round_ in zip(indices, rounds)]
    stop = lambda: job.stop_requested  # noqa: E731
    if len(samplers) == 1:
        sampler = samplers[0]
        answers = sampler.sample(prompts, p.n, p, seeds, stop)
        return [group for group, _ in answers], sum(used for _, used in answers)
    groups: list[list[dict[str, Any]]] = [[] for _ in prompts]
    tokens = 0
    for sampler in samplers:
        for group, ((answer,), used) in zip(groups, sampler.sample(prompts, 1, p, seeds, stop)):
            group.append(answer)
            tokens += used
    for group, seed in zip(groups, seeds):
        random.Random(seed).shuffle(group)
    return groups, tokens


# --- The session ------------------------------------------------------------------------------------

def run(spec: JobSpec, job: JobContext):
    # 1. Parameters, checked against their bounds.
    p: SampleParams = params_mod.build(SampleParams, spec.params)
    resolve_auto(p, spec)
    leave_a_core(spec)
    ab = bool(p.model_b.strip())

    # 2. Prompts, written for the ranking screen before anything slow happens.
    job.status("Reading the prompts")
    prompts = session_prompts(spec, p)
    total = len(prompts)
    job.data_counts = (total, 0)

    # 3. Models.
    samplers = load_samplers(spec, p, job)
    cands.write_prompts(job.run_dir, prompts, models=[s.label for s in samplers], n=2 if ab else p.n, ab=ab,
                        datasets=[s.dataset for s in spec.train])

    # 4. The loop: requests first, then new prompts while the ranking keeps up. A stop is a flag
    # here (no checkpoint to save), checked between groups and by generate itself.
    job.training = True
    job.status(f"Sampling {total} prompt(s)", 0.0)
    rounds: dict[int, int] = {}
    next_index = 0

    def emit_groups(indices: list[int]) -> None:
        """Sample the groups of `indices` together and append each; one log event per group."""
        round_list = [rounds.get(index, -1) + 1 for index in indices]
        started = time.time()
        groups, tokens = make_groups(samplers, [prompts[i] for i in indices], indices, round_list, p, job)
        if job.stop_requested:
            return  # cut short by the stop: not groups anyone should rank
        seconds = time.time() - started
        for index, round_, group in zip(indices, round_list, groups):
            cands.write_group(job.run_dir, index, round_, prompts[index], group, ab=ab)
            rounds[index] = round_
            job.last_step = len(rounds)
            job.emit(ev.Log(step=job.last_step, total_steps=total, tokens_per_s=tokens / max(seconds, 1e-9),
                            metrics={"seconds_per_group": seconds / len(indices), "round": float(round_)}))

    requests, rankings = JsonlTail(job.run_dir / cands.REQUESTS), JsonlTail(locations.rankings_file(spec.project))
    asked: list[int] = []
    done: set[int] = set()
    last_activity, said = time.time(), ""

    def say(message: str, progress: float) -> None:
        nonlocal said
        if message != said:
            job.status(message, progress)
            said = message

    while not job.stop_requested:
        new_requests = [r["index"] for r in requests.read_dicts() if isinstance(r.get("index"), int)]
        new_done = {r["index"] for r in rankings.read_dicts()
                    if r.get("session") == spec.id and isinstance(r.get("index"), int)}
        if new_requests or new_done - done:
            last_activity = time.time()
        asked += new_requests
        done |= new_done
        # One batch: resample requests first (oldest first), then new prompts while the ranking keeps up.
        batch = cands.unserved(asked, rounds)[:p.prompt_batch]
        room = min(p.prompt_batch - len(batch), p.ahead - len(set(rounds) - done), total - next_index)
        fresh = list(range(next_index, next_index + max(room, 0)))
        if batch or fresh:
            emit_groups(batch + fresh)
            next_index += len(fresh)
            last_activity = time.time()
            if fresh:
                say(f"Sampled {len(rounds)}/{total} prompt(s)", len(rounds) / total)
            continue
        if set(range(total)) <= done:
            break
        if next_index < total:
            say(f"Waiting for the ranking: {p.ahead} group(s) ready ({len(rounds)}/{total} sampled)",
                len(rounds) / total)
        else:
            say(f"All {total} prompt(s) sampled; serving resample requests until everything is ranked", 1.0)
        if time.time() - last_activity > p.idle_minutes * 60:
            spec.notes.append(f"Nothing ranked or asked for {p.idle_minutes:g} min: the session ended.")
            break
        time.sleep(POLL_SECONDS)
    job.training = False
    return job.run_dir / cands.CANDIDATES
