"""Disk space for a run: how much is free where it writes, the words for a full disk, and the
reserve that keeps a run's last events writable when the disk fills.

A run holds a few hundred KiB of real blocks (`Reserve`) beside its events. When a write meets
ENOSPC, the reserve is given back and the write retried, so the error event that ends the run
still lands whole. Light: standard library only.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

RESERVE_BYTES = 256 * 1024
MARGIN = 1.10  # a checkpoint may grow a little from one save to the next (optimizer state, metadata)


class DiskFull(OSError):
    """No room for what a run must write; the message says where, how much, and what is intact."""

    kind = "disk_full"

    def __init__(self, message: str):
        super().__init__(errno.ENOSPC, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def free_bytes(path: Path) -> int:
    """Free bytes for an unprivileged writer on the filesystem holding `path` (or its nearest parent)."""
    return shutil.disk_usage(existing(Path(path))).free


def mount_point(path: Path) -> Path:
    """The mount point of the filesystem holding `path`: what a person knows the disk by."""
    path = existing(Path(path)).resolve()
    device = path.stat().st_dev
    while path.parent != path and path.parent.stat().st_dev == device:
        path = path.parent
    return path


def size_of(path: Path) -> int:
    """Bytes a file or a folder's files take (apparent sizes)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB" if n < 1e8 else f"{n / 1e6:,.0f} MB"


def is_no_space(exc: BaseException) -> bool:
    """Whether `exc`, or what it was raised from, is a full disk (torch's zip writer and safetensors
    say it in their own words)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(exc).lower()
        if "no space left" in text or "unexpected pos" in text or "disk quota" in text:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def existing(path: Path) -> Path:
    """`path`, or its nearest parent that exists (where a file about to be written would land)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


class Reserve:
    """Blocks held in a file beside a run's events, given back the first time a write meets a full disk."""

    def __init__(self, path: Path, size: int = RESERVE_BYTES):
        self.path = Path(path)
        self.held = False
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, size)  # real blocks, not a sparse file
            finally:
                os.close(fd)
            self.held = True
        except OSError:  # already full, or a filesystem without fallocate: no reserve
            self.path.unlink(missing_ok=True)

    def release(self) -> bool:
        """Give the blocks back; whether there were any."""
        if not self.held:
            return False
        self.held = False
        self.path.unlink(missing_ok=True)
        return True

    def drop(self) -> None:
        """At the end of the run: the reserve is no longer needed."""
        self.release()


def stopped_message(run_dir: Path, exc: BaseException, step: int) -> str:
    """The one line a run that met a full disk ends with: what it was writing, how much was needed
    and free, where it stopped, and which checkpoint a resume starts from."""
    from workbench.run import layout

    run_dir = Path(run_dir)
    cause = str(exc) if isinstance(exc, DiskFull) else (
        f"No space left on {mount_point(run_dir)} ({mb(free_bytes(run_dir))} free)")
    latest = layout.latest_checkpoint(run_dir)
    intact = (f"checkpoint {layout.checkpoint_step(latest)} is intact" if latest is not None
              else "no checkpoint was written yet")
    return f"{cause}; the run stopped at step {step}, {intact}. Free some space, then resume it."
