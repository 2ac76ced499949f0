"""Every number a run logged, one series per metric, folded from its events (plain Python, no widgets).

A `log` event gives `loss`, `lr`, `grad_norm`, `tokens_per_s` and each key of its `metrics` under
the trainer's own name (TRL's `reward`, `rewards/<function>/mean`, `kl`, ...); an `eval` event
gives `eval/loss` and `eval/<name>` for its metrics. A series keeps every point in two compact
arrays, sorted by step, the latest value per step winning (a resumed run trains steps again), so
a run of tens of thousands of logs costs a few megabytes; charts thin it for drawing.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left

from workbench.run import events as ev

EVAL = "eval/"
LOG_FIELDS = ("loss", "lr", "grad_norm", "tokens_per_s")


class Series:
    """Steps and values of one metric, sorted by step, one value per step."""

    __slots__ = ("steps", "values")

    def __init__(self) -> None:
        self.steps = array("q")
        self.values = array("d")

    def __len__(self) -> int:
        return len(self.steps)

    def put(self, step: int, value: float) -> None:
        """Set the value at `step`: appended in the usual case, replaced or inserted for a step seen again."""
        if not self.steps or step > self.steps[-1]:
            self.steps.append(step)
            self.values.append(value)
            return
        at = bisect_left(self.steps, step)
        if at < len(self.steps) and self.steps[at] == step:
            self.values[at] = value
        else:
            self.steps.insert(at, step)
            self.values.insert(at, value)

    def at(self, step: int) -> float | None:
        at = bisect_left(self.steps, step)
        return self.values[at] if at < len(self.steps) and self.steps[at] == step else None

    @property
    def last(self) -> float | None:
        """The latest finite value (a NaN at the end says nothing about where the run stands)."""
        for value in reversed(self.values):
            if math.isfinite(value):
                return value
        return None


class RunMetrics:
    """`add(events)` folds new events in; `version` counts changes so a chart knows when to redraw."""

    def __init__(self) -> None:
        self.series: dict[str, Series] = {}
        self.method = ""
        self.version = 0

    def add(self, events: list[ev.Event]) -> None:
        for event in events:
            if isinstance(event, ev.Log):
                for name in LOG_FIELDS:
                    self._put(name, event.step, getattr(event, name))
                for name, value in event.metrics.items():
                    self._put(name, event.step, value)
            elif isinstance(event, ev.Eval):
                self._put(EVAL + "loss", event.step, event.loss)
                for name, value in event.metrics.items():
                    self._put(EVAL + name, event.step, value)
            elif isinstance(event, ev.Started) and event.method:
                self.method = event.method

    def _put(self, name: str, step: int, value: float | None) -> None:
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        series = self.series.get(name)
        if series is None:
            series = self.series[name] = Series()
        series.put(step, float(value))
        self.version += 1

    def get(self, name: str) -> Series | None:
        return self.series.get(name)

    def has(self, name: str) -> bool:
        return bool(self.series.get(name))

    def names(self) -> list[str]:
        """Every metric that came: the run's own first, eval metrics after, each group sorted."""
        return sorted(self.series, key=lambda name: (name.startswith(EVAL), name))
