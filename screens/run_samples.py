"""The outputs a run showed, by step, folded from its `sample` events (plain Python, no widgets).

A resumed run trains steps again: a step's samples from a later life replace the earlier
life's. A sample is ranked by its total reward; one with no total by the sum of its
functions' scores, and a preference pair by its chosen minus rejected log-ratio. A reward
function that raised on some outputs of a step is summed up once: its message and how many
outputs it failed on.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from workbench.run import events as ev

FILTERS = ("all", "worst", "best")


def rank_value(sample: ev.Sample) -> float | None:
    """What `worst` and `best` order by; None when the sample carries no score."""
    if sample.reward is not None and math.isfinite(sample.reward):
        return sample.reward
    scores = [s for s in sample.scores.values() if math.isfinite(s)]
    if scores:
        return sum(scores)
    if sample.chosen_logratio is not None and sample.rejected_logratio is not None:
        margin = sample.chosen_logratio - sample.rejected_logratio
        return margin if math.isfinite(margin) else None
    return None


def picked(samples: list[ev.Sample], how: str) -> list[ev.Sample]:
    """`all` in the order written; `worst`/`best`: the lowest/highest quarter (at least one) of the
    ranked samples, the most extreme first."""
    if how == "all":
        return list(samples)
    ranked = [s for s in samples if rank_value(s) is not None]
    ranked.sort(key=rank_value, reverse=how == "best")
    return ranked[:max(1, math.ceil(len(ranked) / 4))] if ranked else []


@dataclass
class FunctionError:
    """A reward function that raised: its first message, and on how many outputs it failed."""

    function: str
    message: str
    count: int
    messages: int  # different messages among them


def errors_of(samples: list[ev.Sample]) -> list[FunctionError]:
    """One entry per function that raised on any of `samples`, the most frequent first."""
    first: dict[str, str] = {}
    counts: Counter[str] = Counter()
    kinds: dict[str, set[str]] = {}
    for sample in samples:
        for function, message in sample.errors.items():
            first.setdefault(function, message)
            counts[function] += 1
            kinds.setdefault(function, set()).add(message)
    return [FunctionError(f, first[f], n, len(kinds[f])) for f, n in counts.most_common()]


class RunSamples:
    """`add(events)` folds new events in; `version` counts changes so a view knows when to redraw."""

    def __init__(self) -> None:
        self.by_step: dict[int, list[ev.Sample]] = {}
        self._life_of: dict[int, int] = {}
        self._life = 0
        self.version = 0

    def add(self, events: list[ev.Event]) -> None:
        for event in events:
            if isinstance(event, ev.Started):
                self._life += 1
            elif isinstance(event, ev.Sample):
                if self._life_of.get(event.step) != self._life:
                    self.by_step[event.step] = []  # a step trained again: its new samples only
                    self._life_of[event.step] = self._life
                self.by_step[event.step].append(event)
                self.version += 1

    def steps(self) -> list[int]:
        return sorted(self.by_step)

    def at(self, step: int) -> list[ev.Sample]:
        return self.by_step.get(step, [])

    def __len__(self) -> int:
        return sum(len(samples) for samples in self.by_step.values())
