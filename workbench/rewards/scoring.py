"""How a batch of completions was judged by a set of rewards: one path for the dry run, PPO and the
samples of GRPO and RLOO.

`judge(rewards, prompts, completions, **columns)` calls every reward as TRL calls it and gives a
`Judgement`; during GRPO and RLOO, TRL calls the rewards itself, so a `Recorder` hands the trainer
wrapped rewards that note what each one said, and builds the same `Judgement` once all have
spoken. Either way a completion's `Judged` holds each reward's weighted score (a reward that gave
none is absent), their total (None when no reward scored it: TRL leaves such a completion out of
its group) and the errors of the rewards that raised on it. Light: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Judged:
    """One completion: each reward's weighted score, their total, {reward: error} where one raised."""

    scores: dict[str, float]
    total: float | None
    errors: dict[str, str]


@dataclass
class Judgement:
    """What every reward said of one batch: each reward's own (unweighted) scores and its errors by
    completion index, in the rewards' order."""

    prompts: list
    completions: list
    raw: dict[str, list[float | None]]
    errors: dict[str, dict[int, str]]
    weights: dict[str, float]
    columns: dict[str, Any] = field(default_factory=dict)
    number: int = 0  # the recorder's count of batches, 1 for the first

    def __len__(self) -> int:
        return len(self.completions)

    def judged(self, i: int) -> Judged:
        scores = {name: self.weights[name] * s[i] for name, s in self.raw.items() if s[i] is not None}
        errors = {name: e[i] for name, e in self.errors.items() if i in e}
        return Judged(scores, sum(scores.values()) if scores else None, errors)

    def totals(self) -> list[float | None]:
        return [self.judged(i).total for i in range(len(self))]


def call(reward: Any, prompts: list, completions: list, **columns: Any) -> tuple[list[float | None], dict[int, str]]:
    """(scores, errors by completion index) of one reward: a `Reward` says where it raised; a reward
    model or any other callable only scores."""
    judge_ = getattr(reward, "judge", None)
    if judge_ is not None:
        return judge_(prompts, completions, **columns)
    return [None if s is None else float(s) for s in reward(prompts, completions, **columns)], {}


def judge(rewards: list, prompts: list, completions: list, **columns: Any) -> Judgement:
    """Every reward on the batch, called as TRL calls it."""
    said = {r.name: call(r, prompts, completions, **columns) for r in rewards}
    return Judgement(prompts, completions, {n: s for n, (s, _) in said.items()},
                     {n: e for n, (_, e) in said.items()}, {r.name: r.weight for r in rewards}, columns)


def failure_counts(rewards: list) -> dict[str, float]:
    """{"reward_errors/<name>": completions it failed on so far} for each reward that raised, as metrics."""
    out = {}
    for reward in rewards:
        failures = getattr(reward, "failures", None)
        if failures is not None and failures.failed:
            out[f"reward_errors/{reward.name}"] = float(failures.failed)
    return out


class Recorder:
    """Wraps the rewards given to TRL's GRPO or RLOO trainer; `last` is the `Judgement` of the latest batch
    they all judged. TRL calls the rewards one after the other on the same batch, in their order."""

    def __init__(self, rewards: list):
        self.rewards = list(rewards)
        self.wrapped = [_Recording(self, i, r) for i, r in enumerate(self.rewards)]
        self.last: Judgement | None = None
        self._said: dict[str, tuple[list[float | None], dict[int, str]]] = {}
        self._count = 0

    def _heard(self, index: int, prompts: list, completions: list, columns: dict[str, Any],
               said: tuple[list[float | None], dict[int, str]]) -> None:
        if index == 0:
            self._said = {}
        self._said[self.rewards[index].name] = said
        if len(self._said) == len(self.rewards):
            self._count += 1
            kept = {k: v for k, v in columns.items() if isinstance(v, list) and len(v) == len(completions)}
            self.last = Judgement(list(prompts), list(completions), {n: s for n, (s, _) in self._said.items()},
                                  {n: e for n, (_, e) in self._said.items()},
                                  {r.name: r.weight for r in self.rewards}, kept, self._count)
            self._said = {}


class _Recording:
    """One reward as TRL sees it (same name and weight) that tells the recorder what it said."""

    def __init__(self, recorder: Recorder, index: int, reward: Any):
        self.recorder, self.index, self.reward = recorder, index, reward
        self.name = self.__name__ = reward.name
        self.weight = reward.weight

    def __repr__(self) -> str:
        return f"Recorded({self.reward!r})"

    def __call__(self, prompts: list, completions: list, **columns: Any) -> list[float | None]:
        said = call(self.reward, prompts, completions, **columns)
        self.recorder._heard(self.index, prompts, completions, columns, said)
        return said[0]
