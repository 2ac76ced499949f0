"""Whether the process behind a run (or a plan) is alive: its pid file, its heartbeat, and the
children this process started (collected once they end, so a finished worker is no zombie).

A worker writes `pid` when it starts and `heartbeat` every few seconds; a folder whose pid
is a live process with a fresh heartbeat (or a pid file just written, for a worker still
importing its libraries) is alive. Light: standard library only.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

from workbench.files import write_atomic
from workbench.run import layout

HEARTBEAT_SECONDS = 2.0
HEARTBEAT_STALE_SECONDS = 20.0

_children: list[subprocess.Popen] = []
_children_lock = threading.Lock()  # the UI spawns and polls from worker threads


def track(proc: subprocess.Popen, folder: Path) -> None:
    """Remember a child started for `folder`, and write its pid there."""
    with _children_lock:
        _children.append(proc)
    write_atomic(Path(folder) / layout.PID, f"{proc.pid}\n")


def reap() -> None:
    """Collect the children that have ended."""
    with _children_lock:
        _children[:] = [proc for proc in _children if proc.poll() is None]


def read_pid(folder: Path) -> int | None:
    try:
        return int((Path(folder) / layout.PID).read_text().strip())
    except (OSError, ValueError):
        return None


def process_exists(folder: Path) -> bool:
    """True when the pid in the folder's pid file is a live process (not a finished child)."""
    reap()
    pid = read_pid(folder)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def is_alive(folder: Path) -> bool:
    """True when the process exists and has shown life recently: a fresh heartbeat, or a pid
    file just written by the launcher."""
    if not process_exists(folder):
        return False
    now = time.time()
    ages = [now - mtime(Path(folder) / name) for name in (layout.HEARTBEAT, layout.PID)]
    return min(ages) < HEARTBEAT_STALE_SECONDS


def announce(folder: Path) -> threading.Event:
    """For the process itself: write its pid and beat until the returned event is set."""
    write_atomic(Path(folder) / layout.PID, f"{os.getpid()}\n")
    stop = threading.Event()
    threading.Thread(target=_beat, args=(Path(folder) / layout.HEARTBEAT, stop), daemon=True).start()
    return stop


def _beat(path: Path, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            write_atomic(path, f"{time.time():.3f}\n")
        except OSError:
            pass
        stop.wait(HEARTBEAT_SECONDS)
