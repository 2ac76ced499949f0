"""Whether the process behind a run (or a plan) is alive: the lock it holds, its pid file, its
heartbeat, and the children this process started (collected once they end, so a finished worker
is no zombie).

One process at a time works in a folder. It holds an exclusive `flock` on the folder's `lock` file
for its whole life, and the kernel drops that lock when the process ends, however it ends (kill -9
included). A launcher takes the lock before it spawns the process and hands it over (the child
inherits the open file), so two launchers racing on one folder start one process; a process started
by hand takes the lock itself, and leaves at once when another holds it. Only the holder writes
`pid`, and it writes `heartbeat` every few seconds.

A folder is alive while its lock is held. Alive but silent for longer than the heartbeat window
(stopped with SIGSTOP, swapping, busy in a long save) it is stalled, not lost: lost means that no
process holds the lock. Light: standard library only.
"""

from __future__ import annotations

import fcntl
import math
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from workbench.files import write_atomic
from workbench.run import layout

HEARTBEAT_SECONDS = 2.0
HEARTBEAT_STALE_SECONDS = 20.0
STALE_ENV = "WORKBENCH_HEARTBEAT_STALE"  # seconds: another window (tests shorten it; children inherit it)
LOCK_FD_ENV = "WORKBENCH_LOCK_FD"  # the open lock file a launcher hands to the process it spawns
CLAIM_PATIENCE_SECONDS = 0.5  # a reader's probe holds the lock for microseconds; a claim waits that out
PID_PATIENCE_SECONDS = 2.0  # a launcher writes the pid file just after it spawned the holder

_children: list[subprocess.Popen] = []
_children_lock = threading.Lock()  # the UI spawns and polls from worker threads


def stale_seconds() -> float:
    """The heartbeat window: silent for longer than this, a live holder is stalled."""
    try:
        value = float(os.environ.get(STALE_ENV, ""))
    except ValueError:
        return HEARTBEAT_STALE_SECONDS
    return value if math.isfinite(value) and value > 0 else HEARTBEAT_STALE_SECONDS


def beat_seconds() -> float:
    """How often a holder writes its heartbeat: several beats fit in the window."""
    return min(HEARTBEAT_SECONDS, stale_seconds() / 4)


# the lock ---------------------------------------------------------------------------


class Held(RuntimeError):
    """Another process holds the folder's lock; `pid` is that process when its pid file names it."""

    def __init__(self, folder: Path, pid: int | None) -> None:
        self.folder, self.pid = Path(folder), pid
        super().__init__(f"{self.folder} is held by {f'pid {pid}' if pid else 'another process'}")


class Lock:
    """This process's hold on a folder. `close()` drops this process's handle only (a child that
    inherited the lock keeps it); `release()` gives the lock up for every process sharing it."""

    def __init__(self, folder: Path, fd: int) -> None:
        self.folder, self._fd = Path(folder), fd

    @property
    def fd(self) -> int:
        if self._fd is None:
            raise ValueError("the lock is closed")
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def lock_path(folder: Path) -> Path:
    return Path(folder) / layout.LOCK


def _lock(fd: int, patience: float) -> bool:
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)


def claim(folder: Path, patience: float = CLAIM_PATIENCE_SECONDS) -> Lock:
    """Take the folder's lock (a launcher does, before it spawns the process that keeps it).
    Raises `Held` when another process holds it."""
    fd = os.open(lock_path(folder), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    if not _lock(fd, patience):
        os.close(fd)
        raise Held(folder, holder(folder))
    return Lock(folder, fd)


def hold(folder: Path) -> Lock:
    """For the process itself, first thing: the lock its launcher handed over, else its own claim.
    Raises `Held` when another process holds the folder. The lock lasts as long as the process."""
    fd = _handed_over(folder)
    if fd is not None:
        os.set_inheritable(fd, False)  # the processes it starts in turn (converters, sandboxes) never keep it
        if _lock(fd, 0):  # the launcher locked this very open file: already ours
            return Lock(folder, fd)
        os.close(fd)
    return claim(folder)


def _handed_over(folder: Path) -> int | None:
    text = os.environ.pop(LOCK_FD_ENV, "")
    if not text.isdigit():
        return None
    try:
        same = os.path.samestat(os.fstat(int(text)), os.stat(lock_path(folder)))
    except OSError:
        return None
    return int(text) if same else None


def held(folder: Path) -> bool:
    """True while a process holds the folder's lock. The probe takes a shared lock and drops it at
    once: it never keeps a claim waiting longer than the claim's patience."""
    try:
        fd = os.open(lock_path(folder), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _opens(pid: int, path: Path) -> bool:
    """Whether process `pid` has `path` open (read from /proc; True where /proc cannot tell)."""
    fds = Path(f"/proc/{pid}/fd")
    try:
        links = list(fds.iterdir())
    except FileNotFoundError:
        return not Path("/proc/self/fd").exists() and _pid_exists(pid)
    except OSError:
        return _pid_exists(pid)
    try:
        target = path.stat()
    except OSError:
        return False
    for link in links:
        try:
            if os.path.samestat(link.stat(), target):
                return True
        except OSError:
            continue
    return False


def holder(folder: Path, patience: float = PID_PATIENCE_SECONDS) -> int | None:
    """The pid of the process holding the folder's lock, or None when none does (or none can be
    named within `patience`: a launcher writes the pid file just after spawning the holder)."""
    deadline = time.monotonic() + patience
    while held(folder):
        pid = read_pid(folder)
        if pid is not None and _opens(pid, lock_path(folder)):
            return pid
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)
    return None


# the state --------------------------------------------------------------------------


@dataclass(frozen=True)
class Life:
    """What a folder's files say of its process: whether one holds the lock, its pid, the seconds since
    it last showed life, and whether that is longer than the window (stalled, though alive)."""

    alive: bool
    pid: int | None = None
    silent: float = 0.0
    stalled: bool = False


NOBODY = Life(alive=False)


def check(folder: Path) -> Life:
    reap()
    folder = Path(folder)
    pid = read_pid(folder)
    if not held(folder):
        return Life(alive=False, pid=pid)
    last = max(mtime(folder / layout.HEARTBEAT), mtime(folder / layout.PID))
    silent = max(0.0, time.time() - last) if last else 0.0
    return Life(alive=True, pid=pid, silent=silent, stalled=silent > stale_seconds())


def is_alive(folder: Path) -> bool:
    """True while a process holds the folder (stalled or not)."""
    reap()
    return held(folder)


def track(proc: subprocess.Popen, folder: Path) -> None:
    """Remember a child started for `folder` (holding its lock), and write its pid there."""
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


def mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def announce(folder: Path) -> threading.Event:
    """For the process itself, once it holds the lock: write its pid and beat until the returned
    event is set."""
    write_atomic(Path(folder) / layout.PID, f"{os.getpid()}\n")
    stop = threading.Event()
    threading.Thread(target=_beat, args=(Path(folder) / layout.HEARTBEAT, stop), daemon=True).start()
    return stop


def _beat(path: Path, stop: threading.Event) -> None:
    interval = beat_seconds()
    while not stop.is_set():
        try:
            write_atomic(path, f"{time.time():.3f}\n")
        except OSError:  # a full disk has no block for the new file: touching the old one needs none
            try:
                os.utime(path)
            except OSError:
                pass
        stop.wait(interval)
