"""What the monitor knows about a run, folded from its events (plain Python, no widgets).

A run may live several lives: each resume appends a new `started` event to the same
file, and steps after the checkpoint are trained again. The latest value per step wins,
errors and final events belong to the life they happened in, and elapsed time adds up
the lives.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from workbench.run import events as ev

NOTED = (ev.Started, ev.Status, ev.TrainBegin, ev.Checkpoint, ev.Error, ev.Finished)
WARNING = "Warning: "  # how the worker's preflight warnings begin


@dataclass
class Note:
    """One line of the monitor's event log."""

    time: float
    kind: str
    text: str


@dataclass
class RunHistory:
    train: dict[int, float] = field(default_factory=dict)  # step -> latest train loss
    eval: dict[int, float] = field(default_factory=dict)  # step -> latest eval loss
    notes: list[Note] = field(default_factory=list)
    step: int = 0
    total_steps: int = 0
    epoch: float | None = None
    lr: float | None = None
    tokens_per_s: float | None = None
    status: str = ""
    error: str = ""  # the current life's error message, for a person
    warning: str = ""  # the current life's latest preflight warning, without its prefix
    finished: ev.Finished | None = None
    lives: list[list[float]] = field(default_factory=list)  # [start, last event] per life
    _rate_from: tuple[float, int] | None = None  # (time, step) of this life's first log
    _rate_to: tuple[float, int] | None = None
    _log_gap: float = 0.0  # seconds between the last two logs

    def add(self, events: list[ev.Event]) -> None:
        for event in events:
            self._add(event)

    def _add(self, event: ev.Event) -> None:
        if isinstance(event, ev.Started):
            self.lives.append([event.time, event.time])
            self.error, self.finished, self.status, self.warning = "", None, "", ""
            self._rate_from = self._rate_to = None
            self._log_gap = 0.0
        elif self.lives:
            self.lives[-1][1] = max(self.lives[-1][1], event.time)
        else:  # a file whose first line was lost: start a life anyway
            self.lives.append([event.time, event.time])
        if isinstance(event, ev.Log):
            self._add_log(event)
        elif isinstance(event, ev.Eval) and event.loss is not None:
            self.eval[event.step] = event.loss
        elif isinstance(event, ev.TrainBegin):
            self.total_steps = event.total_steps or self.total_steps
        elif isinstance(event, ev.Status):
            self.status = event.message
            if event.message.startswith(WARNING):
                self.warning = event.message.removeprefix(WARNING)
        elif isinstance(event, ev.Error):
            self.error = event.message
        elif isinstance(event, ev.Finished):
            self.finished = event
            self.step = max(self.step, event.step)
        if isinstance(event, NOTED):
            self.notes.append(Note(event.time, note_kind(event), describe(event)))

    def _add_log(self, log: ev.Log) -> None:
        if log.loss is not None:
            self.train[log.step] = log.loss
        self.step = log.step
        self.total_steps = log.total_steps or self.total_steps
        self.epoch, self.lr = log.epoch, log.lr
        self.tokens_per_s = log.tokens_per_s
        if self._rate_from is None:
            self._rate_from = (log.time, log.step)
        if self._rate_to is not None:
            self._log_gap = max(0.0, log.time - self._rate_to[0])
        self._rate_to = (log.time, log.step)

    # figures derived for display

    @property
    def last_loss(self) -> float | None:
        return self.train[max(self.train)] if self.train else None

    @property
    def last_eval_loss(self) -> float | None:
        return self.eval[max(self.eval)] if self.eval else None

    @property
    def steps_per_s(self) -> float | None:
        """Speed over this life's logged steps (None until two logs are apart)."""
        if self._rate_from is None or self._rate_to is None:
            return None
        (t0, s0), (t1, s1) = self._rate_from, self._rate_to
        if t1 <= t0 or s1 <= s0:
            return None
        return (s1 - s0) / (t1 - t0)

    def elapsed(self, alive: bool, now: float | None = None) -> float:
        """Seconds spent in the worker over all lives; the current one runs to now."""
        now = time.time() if now is None else now
        total = 0.0
        for i, (start, last) in enumerate(self.lives):
            end = now if alive and i == len(self.lives) - 1 else last
            total += max(0.0, end - start)
        return total

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left at this life's speed.

        Between two logs it counts down, but by no more than the usual gap between
        logs: a worker that stops logging does not reach 0:00.
        """
        rate = self.steps_per_s
        if rate is None or not self.total_steps or self._rate_to is None:
            return None
        since = self.last_log_age(now) or 0.0
        left = (self.total_steps - self.step) / rate
        return max(0.0, left - min(since, self._log_gap))

    def last_log_age(self, now: float | None = None) -> float | None:
        """Seconds since this life's latest log."""
        if self._rate_to is None:
            return None
        now = time.time() if now is None else now
        return max(0.0, now - self._rate_to[0])


def note_kind(event: ev.Event) -> str:
    """The event's type, or "warning" for a status that is a preflight warning."""
    if isinstance(event, ev.Status) and event.message.startswith(WARNING):
        return "warning"
    return event.type


def describe(event: ev.Event) -> str:
    """One line about an event, for a person."""
    if isinstance(event, ev.Started):
        if event.resumed_from:
            return f"resumed from {event.resumed_from.rsplit('/', 1)[-1]} (pid {event.pid})"
        return f"worker started (pid {event.pid})"
    if isinstance(event, ev.Status):
        done = f" ({event.progress:.0%})" if event.progress is not None else ""
        return event.message + done
    if isinstance(event, ev.TrainBegin):
        share = event.trainable_params / event.total_params if event.total_params else 0.0
        return (f"training {event.total_steps} steps on {event.device}: {event.train_records} records, "
                f"{event.trainable_params:,} trainable params ({share:.2%})")
    if isinstance(event, ev.Checkpoint):
        return f"checkpoint saved at step {event.step}"
    if isinstance(event, ev.Error):
        return f"{event.kind}: {event.message}"
    if isinstance(event, ev.Finished):
        return f"finished ({event.reason}) at step {event.step}"
    return event.type


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def duration(seconds: float | None) -> str:
    """h:mm:ss (or m:ss under an hour); a dash when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
