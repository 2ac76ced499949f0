"""The peak memory of this process, as the kernel and the CUDA allocator recorded it.

A worker reports both when it ends (the `finished` event and `result.toml`): the host figure is
`VmHWM` of /proc/self/status, the high-water mark of this process's own address space, which starts
empty at exec. (`ru_maxrss`, from getrusage or wait4, is not that: Linux carries the parent's
high-water mark across a vfork and exec into the child's figure, so a worker started by a large
process would report its parent's peak.) The GPU figure is the most the CUDA caching allocator held
on this process's device, 0 where CUDA was never used. Light on imports: torch is only read when the
process has already imported it.
"""

from __future__ import annotations

import sys


def host_bytes(status: str = "/proc/self/status") -> int:
    """This process's peak resident memory (VmHWM) in bytes; 0 where the system does not say."""
    try:
        with open(status, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    value, unit = line.split()[1:3]
                    return int(value) * {"kB": 1024, "mB": 1024 ** 2}.get(unit, 1)
    except (OSError, ValueError, IndexError):
        pass
    return 0


def gpu_bytes() -> int:
    """The most the CUDA caching allocator reserved in this process (its device's figure), 0 without CUDA."""
    torch = sys.modules.get("torch")
    if torch is None:
        return 0
    try:
        if not torch.cuda.is_available() or not torch.cuda.is_initialized():
            return 0
        return int(torch.cuda.max_memory_reserved())
    except Exception:  # noqa: BLE001 - a figure, never the reason a run fails
        return 0
