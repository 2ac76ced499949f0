"""Telemetry: real CPU/RAM figures, no GPU on a machine without NVML, and the NVML mapping."""

from __future__ import annotations

import sys
import types
from types import SimpleNamespace

import pytest

from workbench import telemetry

GIB = 1024**3


@pytest.fixture(autouse=True)
def fresh_nvml():
    telemetry._reset()
    yield
    telemetry._reset()


class FakeNVMLError(Exception):
    pass


def fake_pynvml(init_fails: bool = False, calls: list | None = None) -> types.ModuleType:
    """A stand-in for pynvml with two GPUs; the second does not report power."""
    calls = calls if calls is not None else []
    module = types.ModuleType("pynvml")
    module.NVMLError = FakeNVMLError
    module.NVML_TEMPERATURE_GPU = 0

    def init():
        calls.append("init")
        if init_fails:
            raise FakeNVMLError("Driver Not Loaded")

    def power(handle):
        if handle == 1:
            raise FakeNVMLError("Not Supported")
        return 215_500  # milliwatts

    module.nvmlInit = init
    module.nvmlDeviceGetCount = lambda: 2
    module.nvmlDeviceGetHandleByIndex = lambda i: i
    module.nvmlDeviceGetName = lambda h: b"NVIDIA H100 80GB HBM3" if h == 0 else "NVIDIA L4"
    module.nvmlDeviceGetUtilizationRates = lambda h: SimpleNamespace(gpu=87 if h == 0 else 3, memory=40)
    module.nvmlDeviceGetMemoryInfo = lambda h: SimpleNamespace(used=20 * GIB, total=80 * GIB, free=60 * GIB)
    module.nvmlDeviceGetTemperature = lambda h, sensor: 64 if h == 0 else 41
    module.nvmlDeviceGetPowerUsage = power
    module.nvmlDeviceGetEnforcedPowerLimit = lambda h: 700_000
    return module


def test_cpu_and_ram_are_always_reported():
    snap = telemetry.snapshot()
    assert 0.0 <= snap.cpu_percent <= 100.0
    assert snap.ram_total_gib > 0.1
    assert 0.0 < snap.ram_used_gib < snap.ram_total_gib
    assert 0.0 < snap.ram_fraction < 1.0


def test_no_gpu_gives_an_empty_list_and_a_reason(monkeypatch):
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        pytest.skip("this machine has a working NVIDIA driver")
    except Exception:  # noqa: BLE001
        pass
    snap = telemetry.snapshot()
    assert snap.gpus == []
    assert snap.gpu_error.startswith("NVML unavailable")


def test_nvml_figures_are_mapped_to_watts_and_gib(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())
    snap = telemetry.snapshot()
    assert [g.index for g in snap.gpus] == [0, 1]
    first, second = snap.gpus
    assert first.name == "NVIDIA H100 80GB HBM3"  # bytes from old drivers are decoded
    assert second.name == "NVIDIA L4"
    assert first.util_percent == 87.0
    assert first.memory_used_gib == pytest.approx(20.0)
    assert first.memory_total_gib == pytest.approx(80.0)
    assert first.memory_fraction == pytest.approx(0.25)
    assert first.temperature_c == 64.0
    assert first.power_w == pytest.approx(215.5)
    assert first.power_limit_w == pytest.approx(700.0)
    assert second.power_w is None  # not supported on that GPU: None, not an exception
    assert snap.gpu_error == ""


def test_a_failed_init_is_cached_and_never_raises(monkeypatch):
    calls: list = []
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(init_fails=True, calls=calls))
    for _ in range(3):
        snap = telemetry.snapshot()
        assert snap.gpus == []
        assert "Driver Not Loaded" in snap.gpu_error
    assert calls == ["init"]


def test_a_missing_pynvml_module_means_no_gpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import raises ImportError
    snap = telemetry.snapshot()
    assert snap.gpus == []
    assert snap.ram_total_gib > 0
