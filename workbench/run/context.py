"""What a running method gets from the worker: the spec, the event writer, the stop flag.

`status()` and `emit()` are the only way a method reports anything (logging never
branches the loop); `methods.kit.callback` adapts a Hugging Face trainer to them.

A stop (SIGTERM, SIGINT) is a flag while a method's loop runs (`training`): the loop saves
a checkpoint and returns. Before that, the first request also interrupts whatever runs
(an import, a model load) with StopRequested, so that a long load ends at once. What it
interrupts may turn the exception into another one (a library that wraps an import
error); `ended_by_stop` tells the worker that such a failure is the stop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from workbench.run import events as ev
from workbench.run import layout
from workbench.run.spec import JobSpec


class StopRequested(Exception):
    """Raised when a stop arrives before training began (nothing to checkpoint yet)."""


@dataclass
class JobContext:
    spec: JobSpec
    run_dir: Path
    writer: ev.EventWriter
    resume_checkpoint: str | None = None
    stop_requested: bool = False
    training: bool = False  # set by a method while its loop runs: a stop is then a flag the loop reads
    closing: bool = False  # set by the worker once the job returned or failed: a stop is only a flag
    last_step: int = 0
    last_eval_step: int = -1
    data_counts: tuple[int, int] = (0, 0)  # (train, eval) records, set by the method
    notes: list[str] = field(default_factory=list)

    def emit(self, event: ev.Event, sync: bool = False) -> None:
        self.writer.emit(event, sync=sync)

    def status(self, message: str, progress: float | None = None) -> None:
        self.emit(ev.Status(message=message, progress=progress))

    def note(self, note: str) -> None:
        """Add a reason to the spec's notes (once) and write job.toml now, by the one process that writes
        the run's files (rank 0 of several: the writer of the events)."""
        if note not in self.spec.notes:
            self.spec.notes.append(note)
        if self.writer.enabled:
            self.spec.save(self.run_dir)

    def request_stop(self) -> None:
        """What the signal handlers call. Only the first request interrupts, and only before
        training and before the worker is `closing` (writing its final files and event)."""
        first = not self.stop_requested
        self.stop_requested = True
        if first and not self.training and not self.closing:
            raise StopRequested()

    def check_stop(self) -> None:
        """Call between long preparation phases: turns a pending stop into StopRequested."""
        if self.stop_requested and not self.training and not self.closing:
            raise StopRequested()

    def ended_by_stop(self, exc: BaseException) -> bool:
        """Whether `exc`, which ended the job, is the stop: StopRequested itself or anything it
        caused, or any failure once a stop interrupted the preparation (a library that swallowed
        the interruption and failed further on). A failure while training is the job's own."""
        if not self.stop_requested:
            return False
        return not self.training or any(isinstance(e, StopRequested) for e in _chain(exc))

    @property
    def checkpoints_dir(self) -> Path:
        return layout.checkpoints(self.run_dir)


def _chain(exc: BaseException | None):
    """`exc` and the exceptions it was raised from or while handling, each once."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__
