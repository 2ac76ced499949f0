"""A chart of a run's metrics against step: the lines of a `run_charts.Chart`, redrawn a few times a
second at most.

Every point stays in `RunMetrics`; a draw thins each series to about two points per column
(bucket means, so the trend survives; a min/max band keeps each bucket's extremes), so a run of
tens of thousands of logs draws as fast as a short one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from textual_plotext import PlotextPlot

from screens.run_charts import BAND_COLOR, LOSS, Chart, Line
from screens.run_metrics import RunMetrics, Series

REDRAW_SECONDS = 0.25


def all_finite(values: Sequence[float]) -> bool:
    """True when no value is NaN or infinite (one sum in C; a sum too large to hold says no)."""
    return math.isfinite(sum(values))


def finite_points(steps: Sequence[int], values: Sequence[float]) -> tuple[list[int], list[float], int]:
    """Steps and values without NaN/inf, and how many were left out."""
    if all_finite(values):
        return list(steps), list(values), 0
    keep = [i for i, value in enumerate(values) if math.isfinite(value)]
    if len(keep) == len(values):
        return list(steps), list(values), 0
    return [steps[i] for i in keep], [values[i] for i in keep], len(values) - len(keep)


def thin(steps: Sequence[float], values: Sequence[float], limit: int, how: str = "mean") -> tuple[list, list]:
    """At most `limit` points: consecutive points in buckets, each bucket's mean step and its mean
    value (`how="mean"`: the trend survives), lowest (`"min"`) or highest (`"max"`) value."""
    if len(steps) <= limit or limit < 1:
        return list(steps), list(values)
    size = math.ceil(len(steps) / limit)
    pick = {"mean": lambda b: sum(b) / len(b), "min": min, "max": max}[how]
    xs, ys = [], []
    for i in range(0, len(steps), size):
        bucket_x, bucket_y = steps[i:i + size], values[i:i + size]
        xs.append(sum(bucket_x) / len(bucket_x))
        ys.append(pick(bucket_y))
    return xs, ys


def step_ticks(first: int, last: int, count: int) -> list[int]:
    """Whole-step ticks from first to last (plotext would label 1.5, 36.0, ...)."""
    count = max(2, count)
    if last <= first:
        return [first]
    return sorted({round(first + (last - first) * i / (count - 1)) for i in range(count)})


def percent_ticks(low: float, high: float, count: int) -> tuple[list[float], list[float], list[str]]:
    """(y limits, ticks, labels) for an axis of shares: round steps (1, 2, 2.5 or 5 times a power of
    ten) labelled as percentages; a flat line gets a little room, inside 0-100 %."""
    if high - low < 1e-9:
        low, high = max(0.0, low - 0.05), (high + 0.05 if high + 0.05 <= 1.0 or high > 1.0 else 1.0)
        if high - low < 1e-9:
            high = low + 0.05
    raw = (high - low) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    ticks, tick = [], math.ceil(low / step - 1e-9) * step
    while tick <= high + step * 1e-9:
        ticks.append(tick)
        tick += step
    digits = next(d for d in range(6) if all(abs(round(t * 100, d) - t * 100) < 1e-6 for t in ticks))
    return [low, high], ticks, [f"{tick * 100:.{digits}f}%" for tick in ticks]


def fit_title(parts: list[str], width: int) -> str:
    """`part, part, ...` in `width` characters (plotext drops a title that does not fit): the parts
    that fit, then an ellipsis."""
    title = ", ".join(parts)
    if len(title) <= width:
        return title
    shown = ""
    for part in parts:
        if len(shown) + len(part) + 4 > width:
            return (shown + " …") if shown else part[:max(0, width - 1)] + "…"
        shown += (", " if shown else "") + part
    return shown


def number(value: float | None, percent: bool = False) -> str:
    """A value for a title: a share as a percentage, else four significant digits."""
    if value is None:
        return "–"
    if not math.isfinite(value):
        return str(value)
    if percent:
        return f"{value:.1%}"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.2e}"
    return f"{value:.4g}"


def band_lines(metrics: RunMetrics, line: Line, series: Series, limit: int) -> tuple[tuple, tuple] | None:
    """The band's lower and upper line, each (steps, values) thinned to `limit` points: value ± std
    (bucket means), or the low and high series (each bucket's lowest and highest); None without data."""
    spread = metrics.get(line.std) if line.std else None
    if spread is not None and spread.steps == series.steps and all_finite(series.values) and all_finite(spread.values):
        # the usual case, in C: the mean of (value ± std) over a bucket is mean(value) ± mean(std)
        xs, means = thin(series.steps, series.values, limit)
        _, stds = thin(spread.steps, spread.values, limit)
        scale = line.scale
        return ((xs, [(m - s) * scale for m, s in zip(means, stds)]),
                (xs, [(m + s) * scale for m, s in zip(means, stds)]))
    steps, low, high = band_bounds(metrics, line, series)
    if not steps:
        return None
    envelope = not line.std  # min/max: each bucket's extremes
    return (thin(steps, low, limit, "min" if envelope else "mean"),
            thin(steps, high, limit, "max" if envelope else "mean"))


def band_bounds(metrics: RunMetrics, line: Line, series: Series) -> tuple[list[int], list[float], list[float]]:
    """The band's steps, lower and upper bounds (value ± std, or the low/high series), finite only."""
    steps, low, high = [], [], []
    if line.std:
        spread = metrics.get(line.std)
        if spread is None:
            return steps, low, high
        aligned = spread.steps == series.steps
        for i, step in enumerate(series.steps):
            value = series.values[i]
            std = spread.values[i] if aligned else spread.at(step)
            if std is not None and math.isfinite(value) and math.isfinite(std):
                steps.append(step)
                low.append(value - std)
                high.append(value + std)
    else:
        lows, highs = metrics.get(line.low), metrics.get(line.high)
        if lows is None or highs is None:
            return steps, low, high
        for step, lo in zip(lows.steps, lows.values):
            hi = highs.at(step)
            if hi is not None and math.isfinite(lo) and math.isfinite(hi):
                steps.append(step)
                low.append(lo)
                high.append(hi)
    return steps, [v * line.scale for v in low], [v * line.scale for v in high]


class MetricChart(PlotextPlot):
    """Point it at the data with `show(metrics, chart)`; it redraws on its own clock."""

    DEFAULT_CSS = """
    MetricChart {
        min-height: 8;
        min-width: 30;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.metrics = RunMetrics()
        self.chart: Chart = LOSS
        self._seen: tuple[int, Chart] | None = None
        self._dirty = True
        self.drawn = 0  # redraws so far (tests check the throttle)
        self.title = ""  # the plot's title line, for tests and the palette
        self.empty = ""  # what the title says while no line has a point (else: waiting for the first step)

    def on_mount(self) -> None:
        self.set_interval(REDRAW_SECONDS, self._redraw_if_dirty)
        self._redraw_if_dirty()

    def on_resize(self) -> None:
        self._dirty = True  # the thinning depends on the width

    def show(self, metrics: RunMetrics, chart: Chart, empty: str = "") -> None:
        """Cheap, so it may be called on every event batch: the data is read at the next redraw
        (on the UI thread), not copied, and only when it or the chart changed. `empty`: the title while
        there is nothing to draw, for a job that will never log a point."""
        self.metrics, self.chart = metrics, chart
        if self._seen != (metrics.version, chart) or empty != self.empty:
            self._dirty = True
        self.empty = empty

    def _redraw_if_dirty(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self._seen = (self.metrics.version, self.chart)
        self.drawn += 1
        self._draw()
        self.refresh()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_figure()
        plt.xlabel("step")
        limit = max(10, self.size.width - 10) * 2
        first = last = None
        dropped = 0
        parts = []
        shares: dict[str, list[float]] = {}  # side -> [low, high] while every line on it is a share
        other_sides: set[str] = set()
        for line in self.chart.lines:
            series = self.metrics.get(line.key)
            if not series:
                continue
            steps, values, bad = finite_points(series.steps, series.values)
            dropped += bad
            if line.scale != 1.0:
                values = [v * line.scale for v in values]
            parts.append(self._describe(line, series, values))
            if not steps:
                continue
            first = steps[0] if first is None else min(first, steps[0])
            last = steps[-1] if last is None else max(last, steps[-1])
            side = "right" if line.right else None
            band = band_lines(self.metrics, line, series, limit) if line.band else None
            for bound in band or ():
                plt.plot(*bound, color=BAND_COLOR, marker="braille", yside=side)
            if line.percent:
                drawn = values + [v for bound in band or () for v in bound[1]]
                span = shares.setdefault(side or "left", [math.inf, -math.inf])
                span[0], span[1] = min(span[0], min(drawn)), max(span[1], max(drawn))
                if line.whole:
                    span[0], span[1] = min(span[0], 0.0), max(span[1], 1.0)
            else:
                other_sides.add(side or "left")
            if line.points:
                plt.scatter(*thin(steps, values, limit), label=line.label, color=line.color, marker="●", yside=side)
            else:
                plt.plot(*thin(steps, values, limit), label=line.label, color=line.color, marker="hd", yside=side)
        if first is None:
            self.title = self.empty or f"{self.chart.name}: waiting for the first logged step"
            plt.title(self.title)
            return
        if dropped:
            parts.insert(0, f"{dropped} NaN/inf not drawn")
        self.title = fit_title(parts, self.size.width - 2)  # the latest values (the border names the chart)
        plt.title(self.title)
        plt.xticks(step_ticks(first, last, self.size.width // 10))
        for side, (low, high) in shares.items():
            if side not in other_sides:
                limits, ticks, labels = percent_ticks(low, high, min(5, self.size.height // 4))
                plt.ylim(*limits, yside=side)
                plt.yticks(ticks, labels, yside=side)

    def _describe(self, line: Line, series: Series, values: list[float]) -> str:
        """`label latest` for the title, with the spread when the band is a std."""
        latest = values[-1] if values else None
        text = f"{line.label} {number(latest, line.percent)}"
        if line.std and latest is not None:
            spread = self.metrics.get(line.std)
            std = spread.at(series.steps[-1]) if spread else None
            if std is not None and math.isfinite(std):
                text += f" ± {number(std * abs(line.scale), line.percent)}"
        return text
