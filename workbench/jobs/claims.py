"""A job folder's lock taken by a launcher, and the refusal when another process holds it: what the local
launcher and the Slurm submitter share."""

from __future__ import annotations

import time
from pathlib import Path

from workbench.run import liveness

EXIT_PATIENCE_SECONDS = 60.0  # how long a resume waits for the processes of a run that wrote its final event


class LaunchError(RuntimeError):
    pass


def already_running(what: str, pid: int | None) -> LaunchError:
    return LaunchError(f"{what} is already running{f' (pid {pid})' if pid else ''}.")


def claim(folder: Path, what: str) -> liveness.Lock:
    """The folder's lock, or a LaunchError naming the process that holds it (`what` names the job)."""
    try:
        return liveness.claim(folder)
    except liveness.Held as held:
        raise already_running(what, held.pid) from None


def claim_after_exit(folder: Path, what: str) -> liveness.Lock:
    """`claim`, for a job that wrote its final event: its processes may hold the lock for a few seconds
    more while they exit (the ranks of a multi-process run do), so the claim waits for the process
    that holds it now, up to EXIT_PATIENCE_SECONDS; another process taking it meanwhile is refused."""
    exiting = liveness.read_pid(folder)
    deadline = time.monotonic() + EXIT_PATIENCE_SECONDS
    while True:
        try:
            return liveness.claim(folder)
        except liveness.Held as held:
            if time.monotonic() >= deadline or liveness.read_pid(folder) != exiting:
                raise already_running(what, held.pid) from None
        time.sleep(0.1)
