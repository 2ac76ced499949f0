"""`sample` events: what the model wrote (or was shown) at a step, and how it was judged.

A run writes them at step 1 and every `sample_every` steps (`due`), for `sample_count` prompts:
- GRPO and RLOO (`RewardSamples`): completions the trainer already sampled and scored, read
  through the `Recorder` its rewards were wrapped in (no extra generation, no extra forward):
  each reward's weighted score, the total, the trainer's own advantage, the rewards' errors;
  the completions of one prompt share a `group`. `counting_errors` puts `reward_errors/<name>`
  (completions a reward failed on so far) into the trainer's logged metrics.
- PPO builds its events with `sample_event` from its own rollout.
- DPO (`PairSamples`): chosen and rejected answers of a few training pairs with each one's
  policy/reference log-ratio, from one extra no-grad forward of those pairs.
- SFT and distillation (`EvalAnswers`, off by default): at each eval, greedy answers to a few
  held-out prompts beside the record's own answer (a generation: it costs).
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from workbench.generate import generate
from workbench.rewards.library import completion_text
from workbench.rewards.scoring import Judged, Recorder, failure_counts
from workbench.run import events as ev


def due(step: int, every: int) -> bool:
    """Whether step `step` (1-based) shows samples: the first step, then every `every` (0: never)."""
    return every > 0 and (step == 1 or step % every == 0)


def prompt_text(prompt: Any) -> str:
    """A prompt as the monitor shows it: the text, or each turn of a conversation as "role: content"."""
    if isinstance(prompt, list):
        return "\n".join(f"{m['role']}: {completion_text(m.get('content', ''))}" for m in prompt)
    return str(prompt)


def sample_event(step: int, prompt: Any, completion: Any, judged: Judged | None = None,
                 advantage: float | None = None, group: int | None = None) -> ev.Sample:
    judged = judged or Judged({}, None, {})
    return ev.Sample(step=step, prompt=prompt_text(prompt), completion=completion_text(completion),
                     scores=judged.scores, reward=judged.total, advantage=advantage, errors=judged.errors,
                     group=group)


# --- GRPO and RLOO ------------------------------------------------------------------------------


def counting_errors(trainer_cls: type, rewards: list) -> type:
    """`trainer_cls` whose logged metrics also count, per reward, the completions it failed on so far
    (`reward_errors/<name>`, present once it has failed)."""

    class Counting(trainer_cls):
        def log(self, logs: dict[str, float], *args, **kwargs) -> None:
            if "loss" in logs:
                logs.update(failure_counts(rewards))
            super().log(logs, *args, **kwargs)

    Counting.__name__ = Counting.__qualname__ = trainer_cls.__name__
    return Counting


class RewardSamples(TrainerCallback):
    """At each due step, the `count` first groups of the batch the rewards judged last, one event per
    completion; `trainer` gives the advantages it computed (none where it keeps no record of them)."""

    def __init__(self, job, recorder: Recorder, trainer, every: int, count: int, num_generations: int):
        self.job, self.recorder, self.trainer = job, recorder, trainer
        self.every, self.count, self.size = every, count, num_generations
        self._shown = 0  # the recorder's number of the last batch shown
        self._groups = 0

    def on_step_end(self, args, state, control, **kwargs):
        batch = self.recorder.last
        if batch is None or batch.number == self._shown or not due(state.global_step, self.every):
            return
        self._shown = batch.number
        advantages = trainer_advantages(self.trainer, batch.completions)
        for start in range(0, min(len(batch), self.count * self.size), self.size):
            for i in range(start, min(start + self.size, len(batch))):
                self.job.emit(sample_event(state.global_step, batch.prompts[i], batch.completions[i], batch.judged(i),
                                           None if advantages is None else advantages[i], self._groups))
            self._groups += 1


def trainer_advantages(trainer, completions: list) -> list[float] | None:
    """The advantages TRL's GRPO and RLOO trainers computed for `completions` (this process's share
    of the latest batch), from the record they keep for their completions table; None when that
    record is missing or does not hold these completions (another TRL version)."""
    record = getattr(trainer, "_logs", None)
    try:
        done, advantages = list(record["completion"]), list(record["advantages"])
        processes = trainer.accelerator.num_processes
    except (TypeError, KeyError, AttributeError):
        return None
    n = len(completions)
    start = len(done) - n * processes + trainer.accelerator.process_index * n
    if start < 0 or len(advantages) != len(done) or done[start:start + n] != list(completions):
        return None
    return [float(a) for a in advantages[start:start + n]]


# --- DPO ----------------------------------------------------------------------------------------


class PairSamples(TrainerCallback):
    """At each due step, `count` training pairs (the next ones in order, round the set) with the policy's
    log-ratio to the reference for the chosen and the rejected answer: the quantities whose difference,
    times beta, DPO's loss pushes up. TRL does not hand its per-pair values out, so they cost one no-grad
    forward of those pairs under the policy and one under the reference."""

    def __init__(self, job, trainer, every: int, count: int):
        self.job, self.trainer, self.every, self.count = job, trainer, every, count
        self._next = 0

    def on_step_end(self, args, state, control, **kwargs):
        dataset = self.trainer.train_dataset
        if not due(state.global_step, self.every) or not len(dataset):
            return
        rows = [dataset[(self._next + k) % len(dataset)] for k in range(min(self.count, len(dataset)))]
        self._next = (self._next + len(rows)) % len(dataset)
        chosen, rejected = pair_logratios(self.trainer, rows)
        eos = getattr(self.trainer.processing_class, "eos_token", None)
        for row, c, r in zip(rows, chosen, rejected):
            self.job.emit(ev.Sample(step=state.global_step, prompt=prompt_text(row["prompt"]),
                                    completion=_answer(row["chosen"], eos), rejected=_answer(row["rejected"], eos),
                                    chosen_logratio=c, rejected_logratio=r))


def pair_logratios(trainer, rows: list[dict]) -> tuple[list[float], list[float]]:
    """(chosen, rejected) log p_policy - log p_reference of each tokenized pair, summed over the answer's
    tokens as TRL's DPO loss sums them: the batch TRL's collator makes of `rows`, the reference by
    TRL's own `compute_ref_log_probs` (the adapter switched off, or the frozen copy), the policy in
    eval mode (no dropout)."""
    import torch

    device = trainer.accelerator.device
    batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in trainer.data_collator(rows).items()}
    ref_chosen, ref_rejected = trainer.compute_ref_log_probs(trainer.ref_model or trainer.model, batch)
    model, training = trainer.model, trainer.model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    finally:
        model.train(training)
    tokens, mask = batch["input_ids"][:, 1:], batch["completion_mask"][:, 1:]
    picked = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    chosen, rejected = (picked * mask).sum(1).chunk(2)
    return (chosen - ref_chosen.float()).tolist(), (rejected - ref_rejected.float()).tolist()


def _answer(answer: Any, eos: str | None) -> str:
    """An answer as written: the text (without the end-of-sequence mark TRL appends), or the messages' text."""
    text = completion_text(answer)
    return text[:-len(eos)] if eos and isinstance(answer, str) and text.endswith(eos) else text


# --- SFT and distillation -----------------------------------------------------------------------


class EvalAnswers(TrainerCallback):
    """At each eval, the model's greedy answers to the first `count` held-out records, each with the
    record's own answer as `reference`. The prompt is what training conditions on (the tokens before
    the trained answer, chat template included), shown without special tokens. Costs a generation
    of up to `max_new_tokens` tokens for `count` prompts at each eval."""

    def __init__(self, job, trainer, count: int, max_new_tokens: int, stop_ids: list[int]):
        self.job, self.trainer, self.count = job, trainer, count
        self.max_new_tokens, self.stop_ids = max_new_tokens, stop_ids

    def on_evaluate(self, args, state, control, **kwargs):
        dataset, tokenizer = self.trainer.eval_dataset, self.trainer.processing_class
        if not self.count or dataset is None or not len(dataset):
            return
        held_out = [prompt_and_reference(dataset[i], tokenizer) for i in range(min(self.count, len(dataset)))]
        answers = greedy_answers(self.trainer.model, tokenizer, [p for p, _ in held_out], self.max_new_tokens,
                                 self.stop_ids)
        for (prompt, reference), answer in zip(held_out, answers):
            self.job.emit(ev.Sample(step=state.global_step, prompt=tokenizer.decode(prompt, skip_special_tokens=True),
                                    completion=tokenizer.decode(answer, skip_special_tokens=True),
                                    reference=reference))


def prompt_and_reference(row: dict, tokenizer) -> tuple[list[int], str]:
    """(the prompt's token ids, the record's answer) of a held-out row: a tokenised SFT row (the tokens
    before the first one with loss, and those with loss), or a chat row (the turns before the last,
    with the generation prompt, and the last)."""
    if "messages" in row:
        messages = row["messages"]
        ids = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=True,
                                            return_dict=True)["input_ids"]
        return list(ids), completion_text(messages[-1:])
    if "labels" in row:
        trained = [label != -100 for label in row["labels"]]
    else:
        trained = [bool(m) for m in row["completion_mask"]]
    ids = row["input_ids"]
    first = trained.index(True) if True in trained else len(ids)
    answer = [t for t, keep in zip(ids, trained) if keep]
    return list(ids[:first]), tokenizer.decode(answer, skip_special_tokens=True).rstrip()  # less the template's newline


def greedy_answers(model, tokenizer, prompts: list[list[int]], max_new_tokens: int, stop_ids: list[int]):
    """The greedy continuation of each prompt (token ids), cut after its first stop token, by the one batched
    generation path (`workbench.generate`); the model in eval mode meanwhile, its training mode restored after."""
    training = model.training
    model.eval()
    try:
        answers = generate(model, prompts, max_new_tokens, pad_id=tokenizer.pad_token_id, stop_ids=stop_ids)
    finally:
        model.train(training)
    return [group[0] for group in answers]
