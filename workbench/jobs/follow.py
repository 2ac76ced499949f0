"""Following a job from its folder: its events from the first, as they come, until it ends.

What the CLI prints and a screen shows while a job runs, and how either reattaches to a job that
was started earlier (by another process, before an SSH connection dropped): the events are read
from the start of `events.jsonl`, so a follower that comes late sees everything.
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
    while True:
        alive = liveness.is_alive(folder)  # before reading: what it wrote before it ended is read now
        for event in tail.read_new():
            yield event
            if isinstance(event, (ev.Finished, ev.Error)):
                return
        if not alive:
            yield ev.Error(message=f"{what} ended without a final event (killed?); see {folder / layout.STDERR}.",
                           kind="lost")
            return
        if cancelled():
            return
        time.sleep(poll)
