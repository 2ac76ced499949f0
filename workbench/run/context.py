"""What a running method gets from the worker: the spec, the event writer, the stop flag.

`status()` and `emit()` are the only way a method reports anything (logging never
branches the loop); `methods.kit.callback` adapts a Hugging Face trainer to them.
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
    training: bool = False
    last_step: int = 0
    last_eval_step: int = -1
    data_counts: tuple[int, int] = (0, 0)  # (train, eval) records, set by the method
    notes: list[str] = field(default_factory=list)

    def emit(self, event: ev.Event, sync: bool = False) -> None:
        self.writer.emit(event, sync=sync)

    def status(self, message: str, progress: float | None = None) -> None:
        self.emit(ev.Status(message=message, progress=progress))

    def request_stop(self) -> None:
        self.stop_requested = True
        if not self.training:
            raise StopRequested()

    def check_stop(self) -> None:
        """Call between long preparation phases: turns a pending stop into StopRequested."""
        if self.stop_requested and not self.training:
            raise StopRequested()

    @property
    def checkpoints_dir(self) -> Path:
        return layout.checkpoints(self.run_dir)
