"""Following a job from its folder: its events from the first, as they come, until it ends.

What the CLI prints and a screen shows while a job runs, and how either reattaches to a job that
was started earlier (by another process, before an SSH connection dropped): the events are read
from the start of `events.jsonl`, so a follower that comes late sees everything.

A run sent to Slurm (its folder holds the job's record) is alive while Slurm holds its job, queued
or running, though no lock of it is seen from here; and a life that met its time limit ends with a
`finished` (stopped) event before the job is requeued: the follower goes on to the next life.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

from workbench.run import events as ev
from workbench.run import layout, liveness


def follow(folder: Path, what: str = "The job", poll: float = 0.2, cancelled=lambda: False) -> Iterator[ev.Event]:
    """The job's events from the first, as they come, until `finished` or `error`; a job that ended
    without either (killed) ends with an `error` saying so (`what` names the job). Returns early once
    `cancelled()`."""
    folder = Path(folder)
    tail = ev.EventTail(folder / layout.EVENTS)
    on_slurm = (folder / layout.SLURM_JOB).exists()
    while True:
        alive = _alive(folder, on_slurm)  # before reading: what it wrote before it ended is read now
        for event in tail.read_new():
            yield event
            if isinstance(event, ev.Error) or (isinstance(event, ev.Finished) and not _requeued(folder, on_slurm)):
                return
        if not alive:
            yield ev.Error(message=f"{what} ended without a final event (killed?); see {folder / layout.STDERR}.",
                           kind="lost")
            return
        if cancelled():
            return
        time.sleep(poll)


def _alive(folder: Path, on_slurm: bool) -> bool:
    if not on_slurm:
        return liveness.is_alive(folder)
    from workbench.jobs import store

    return store.read(folder).alive  # the lock where it is seen, else what Slurm says of the job


def _requeued(folder: Path, on_slurm: bool) -> bool:
    """A Slurm run whose life just ended at its time limit and whose job waits to run the next one."""
    if not on_slurm:
        return False
    from workbench.jobs import store

    return store.read(folder).state == "queued"
