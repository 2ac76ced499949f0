"""Train loss (line) and eval loss (points) against step, redrawn a few times a second at most."""

from __future__ import annotations

import math

from textual_plotext import PlotextPlot

REDRAW_SECONDS = 0.25
TRAIN_COLOR = "cyan"
EVAL_COLOR = "orange"


def _finite(points: dict[int, float]) -> tuple[list[int], list[float], int]:
    """Sorted steps and losses without NaN/inf, and how many were left out."""
    steps, losses, dropped = [], [], 0
    for step in sorted(points):
        value = points[step]
        if value is None or not math.isfinite(value):
            dropped += 1
            continue
        steps.append(step)
        losses.append(value)
    return steps, losses, dropped


def thin(steps: list[int], values: list[float], limit: int) -> tuple[list[float], list[float]]:
    """At most `limit` points: consecutive points averaged in buckets (the trend survives)."""
    if len(steps) <= limit or limit < 1:
        return list(steps), list(values)
    size = math.ceil(len(steps) / limit)
    xs, ys = [], []
    for i in range(0, len(steps), size):
        bucket_x, bucket_y = steps[i:i + size], values[i:i + size]
        xs.append(sum(bucket_x) / len(bucket_x))
        ys.append(sum(bucket_y) / len(bucket_y))
    return xs, ys


def step_ticks(first: int, last: int, count: int) -> list[int]:
    """Whole-step ticks from first to last (plotext would label 1.5, 36.0, ...)."""
    count = max(2, count)
    if last <= first:
        return [first]
    return sorted({round(first + (last - first) * i / (count - 1)) for i in range(count)})


class LossChart(PlotextPlot):
    """Set the data with `show(train, eval)`; the chart redraws on its own clock."""

    DEFAULT_CSS = """
    LossChart {
        min-height: 8;
        min-width: 30;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._train: dict[int, float] = {}
        self._eval: dict[int, float] = {}
        self._dirty = True
        self.drawn = 0  # redraws so far (tests check the throttle)

    def on_mount(self) -> None:
        self.set_interval(REDRAW_SECONDS, self._redraw_if_dirty)
        self._redraw_if_dirty()

    def on_resize(self) -> None:
        self._dirty = True  # the thinning depends on the width

    def show(self, train: dict[int, float], eval: dict[int, float]) -> None:
        """Point the chart at the parent's data; cheap, so it may be called on every event batch.

        The dicts are read at the next redraw (on the UI thread), not copied.
        """
        self._train, self._eval = train, eval
        self._dirty = True

    def _redraw_if_dirty(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.drawn += 1
        self._draw()
        self.refresh()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_figure()
        train_x, train_y, bad_train = _finite(self._train)
        eval_x, eval_y, bad_eval = _finite(self._eval)
        plt.xlabel("step")
        if not train_x and not eval_x:
            plt.title("loss: waiting for the first logged step")
            return
        if train_x:
            xs, ys = thin(train_x, train_y, max(10, self.size.width - 10) * 2)
            plt.plot(xs, ys, label="train", color=TRAIN_COLOR, marker="hd")
        if eval_x:
            plt.scatter(eval_x, eval_y, label="eval", color=EVAL_COLOR, marker="●")
        plt.title(self._title(train_y, eval_y, bad_train + bad_eval))
        plt.xticks(step_ticks(min(train_x + eval_x), max(train_x + eval_x), self.size.width // 10))

    @staticmethod
    def _title(train_y: list[float], eval_y: list[float], dropped: int) -> str:
        parts = []
        if train_y:
            parts.append(f"train {train_y[-1]:.4f}")
        if eval_y:
            parts.append(f"eval {eval_y[-1]:.4f}")
        if dropped:
            parts.append(f"{dropped} NaN/inf not drawn")
        return "loss: " + ", ".join(parts)
