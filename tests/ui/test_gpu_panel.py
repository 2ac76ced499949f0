"""The machine panel: a GPU's four lines when there are one or two, a line each from three on."""

from __future__ import annotations

import io

from rich.console import Console

from screens.widgets.gpu_panel import render_snapshot
from workbench.telemetry import GPU, Telemetry


def rendered(snap: Telemetry, width: int = 40) -> list[str]:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(render_snapshot(snap))
    return console.file.getvalue().rstrip("\n").splitlines()


def gpus(count: int) -> list[GPU]:
    return [GPU(index=i, name="NVIDIA H100 80GB HBM3", util_percent=10.0 * i, memory_used_gib=8.0 * i,
                memory_total_gib=80.0, temperature_c=40 + i, power_w=100, power_limit_w=700) for i in range(count)]


def test_one_gpu_has_its_load_memory_temperature_and_power():
    lines = rendered(Telemetry(gpus=gpus(1), cpu_percent=5, ram_used_gib=3, ram_total_gib=16))
    assert [line.split()[0] for line in lines] == ["GPU0", "util", "mem", "temp", "CPU", "RAM"]
    assert "0.0/80.0 GiB" in lines[2] and "40°C" in lines[3] and "100/700 W" in lines[3]


def test_eight_gpus_take_a_line_each_and_fit_the_panel():
    lines = rendered(Telemetry(gpus=gpus(8), cpu_percent=5, ram_used_gib=3, ram_total_gib=16), width=34)
    assert len(lines) == 2 + 8 + 2  # names and the column heads, the GPUs, CPU and RAM
    assert lines[0].split()[0] == "GPUs" and "NVIDIA H100" in lines[0]
    for i, line in enumerate(lines[2:10]):
        assert line.startswith(f"GPU{i}") and f"{10 * i}%" in line and f"{8 * i}/80G" in line, line
    assert all(len(line) <= 34 for line in lines)
