"""A cheap snapshot of the machine: each GPU through NVML, and CPU/RAM through psutil.

The UI process calls `snapshot()` every few seconds. On a machine with no NVIDIA
driver (or no GPU) NVML fails to start; that failure is remembered, `gpus` stays
empty and nothing raises. A figure a GPU does not report is None.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import psutil

GIB = 1024**3

_lock = threading.Lock()
_nvml = None  # the pynvml module once NVML has started
_nvml_tried = False
_nvml_error = ""  # why NVML could not start

psutil.cpu_percent(interval=None)  # primes the counter: the next call measures since import


@dataclass
class GPU:
    index: int
    name: str
    util_percent: float | None = None
    memory_used_gib: float | None = None
    memory_total_gib: float | None = None
    temperature_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None

    @property
    def memory_fraction(self) -> float | None:
        if self.memory_used_gib is None or not self.memory_total_gib:
            return None
        return self.memory_used_gib / self.memory_total_gib


@dataclass
class Telemetry:
    gpus: list[GPU] = field(default_factory=list)
    cpu_percent: float = 0.0
    ram_used_gib: float = 0.0
    ram_total_gib: float = 0.0
    gpu_error: str = ""  # why there is no GPU figure, for a person

    @property
    def ram_fraction(self) -> float:
        return self.ram_used_gib / self.ram_total_gib if self.ram_total_gib else 0.0


def _start_nvml():
    """The pynvml module with NVML started, or None; tried once per process."""
    global _nvml, _nvml_tried, _nvml_error
    with _lock:
        if _nvml_tried:
            return _nvml
        _nvml_tried = True
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception as exc:  # noqa: BLE001 - no module, no driver, no device: no GPU
            _nvml_error = _reason(exc)
            return None
        _nvml = pynvml
        return _nvml



def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"NVML unavailable: {text}"


def _read(call, *args):
    """One NVML figure, or None when this GPU does not report it."""
    try:
        return call(*args)
    except Exception:  # noqa: BLE001 - NVMLError_NotSupported and friends
        return None


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _gpu(nvml, index: int) -> GPU:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    name = _read(nvml.nvmlDeviceGetName, handle)
    gpu = GPU(index=index, name=_text(name) if name is not None else f"GPU {index}")
    util = _read(nvml.nvmlDeviceGetUtilizationRates, handle)
    if util is not None:
        gpu.util_percent = float(util.gpu)
    memory = _read(nvml.nvmlDeviceGetMemoryInfo, handle)
    if memory is not None:
        gpu.memory_used_gib = memory.used / GIB
        gpu.memory_total_gib = memory.total / GIB
    temperature = _read(nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU)
    if temperature is not None:
        gpu.temperature_c = float(temperature)
    power = _read(nvml.nvmlDeviceGetPowerUsage, handle)  # milliwatts
    if power is not None:
        gpu.power_w = power / 1000.0
    limit = _read(nvml.nvmlDeviceGetEnforcedPowerLimit, handle)  # milliwatts
    if limit is not None:
        gpu.power_limit_w = limit / 1000.0
    return gpu


def gpus() -> tuple[list[GPU], str]:
    """Every visible GPU, and an explanation when there is none."""
    nvml = _start_nvml()
    if nvml is None:
        return [], _nvml_error
    try:
        count = nvml.nvmlDeviceGetCount()
        return [_gpu(nvml, i) for i in range(count)], "" if count else "NVML sees no GPU"
    except Exception as exc:  # noqa: BLE001 - a driver hiccup must not break the panel
        return [], _reason(exc)


def snapshot() -> Telemetry:
    """GPU, CPU and RAM figures now; never raises for a missing GPU."""
    found, error = gpus()
    memory = psutil.virtual_memory()
    return Telemetry(
        gpus=found,
        cpu_percent=float(psutil.cpu_percent(interval=None)),
        ram_used_gib=(memory.total - memory.available) / GIB,
        ram_total_gib=memory.total / GIB,
        gpu_error=error,
    )


def _reset() -> None:
    """Forget the NVML state (tests inject a fake module and start again)."""
    global _nvml, _nvml_tried, _nvml_error
    with _lock:
        _nvml, _nvml_tried, _nvml_error = None, False, ""
