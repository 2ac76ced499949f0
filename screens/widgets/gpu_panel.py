"""Each GPU's load, memory, temperature and power; CPU and RAM always, clearly so with no GPU."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.message import Message
from textual.worker import Worker, WorkerState

from screens.widgets.figures import FigurePanel, bar, figures_table
from workbench import telemetry

REFRESH_SECONDS = 2.0


def _num(value: float | None, unit: str, digits: int = 0) -> str:
    return "?" if value is None else f"{value:.{digits}f}{unit}"


def _gpu_rows(table: Table, gpu: telemetry.GPU) -> None:
    table.add_row(Text(f"GPU{gpu.index}", style="bold"), Text(gpu.name, overflow="ellipsis", no_wrap=True))
    util = None if gpu.util_percent is None else gpu.util_percent / 100
    table.add_row("util", Text.assemble(bar(util), f" {_num(gpu.util_percent, '%')}"))
    memory = f"{_num(gpu.memory_used_gib, '', 1)}/{_num(gpu.memory_total_gib, ' GiB', 1)}"
    table.add_row("mem", Text.assemble(bar(gpu.memory_fraction), f" {memory}"))
    power = _num(gpu.power_w, " W")
    if gpu.power_limit_w:
        power = f"{_num(gpu.power_w, '')}/{_num(gpu.power_limit_w, ' W')}"
    table.add_row("temp", f"{_num(gpu.temperature_c, '°C')}   {power}")


COMPACT_FROM = 3  # GPUs from which each takes one line (load and memory) instead of four


def _gpu_line(table: Table, gpu: telemetry.GPU) -> None:
    """One GPU in one line: its load and memory, the two figures a multi-GPU run is watched by."""
    util = None if gpu.util_percent is None else gpu.util_percent / 100
    memory = f"{_num(gpu.memory_used_gib, '', 0)}/{_num(gpu.memory_total_gib, 'G', 0)}"
    table.add_row(Text(f"GPU{gpu.index}", style="bold"),
                  Text.assemble(bar(util, 5), f" {_num(gpu.util_percent, '%'):>4} ", bar(gpu.memory_fraction, 5),
                                f" {memory}"))


def render_snapshot(snap: telemetry.Telemetry) -> Group:
    table = figures_table()
    if len(snap.gpus) >= COMPACT_FROM:
        names = sorted({gpu.name for gpu in snap.gpus})
        table.add_row(Text("GPUs", style="bold"), Text(" · ".join(names), overflow="ellipsis", no_wrap=True))
        table.add_row("", Text("load       memory", style="dim"))
        for gpu in snap.gpus:
            _gpu_line(table, gpu)
    else:
        for gpu in snap.gpus:
            _gpu_rows(table, gpu)
    cpu = snap.cpu_percent / 100
    ram = f"{snap.ram_used_gib:.1f}/{snap.ram_total_gib:.1f} GiB"
    table.add_row("CPU", Text.assemble(bar(cpu), f" {snap.cpu_percent:.0f}%"))
    table.add_row("RAM", Text.assemble(bar(snap.ram_fraction), f" {ram}"))
    return Group(table)


class GpuPanel(FigurePanel):
    """Polls `workbench.telemetry.snapshot()` in a thread every couple of seconds."""

    DEFAULT_CSS = """
    GpuPanel {
        border: round $secondary;
    }
    GpuPanel.-no-gpu {
        border: round $warning;
    }
    """

    class Updated(Message):
        """A fresh snapshot read by the worker thread; a newer one replaces a queued one."""

        def __init__(self, snap: telemetry.Telemetry) -> None:
            super().__init__()
            self.snap = snap

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, GpuPanel.Updated)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("reading GPU and CPU figures…", "machine", id=id, classes=classes)
        self.snap: telemetry.Telemetry | None = None

    def on_mount(self) -> None:
        self.poll()
        self.set_interval(REFRESH_SECONDS, self.poll)

    @work(thread=True, exclusive=True, group="telemetry", exit_on_error=False)
    def poll(self) -> None:
        self.post_message(self.Updated(telemetry.snapshot()))

    def on_gpu_panel_updated(self, message: Updated) -> None:
        message.stop()
        self.snap = message.snap
        no_gpu = not message.snap.gpus
        self.set_class(no_gpu, "-no-gpu")
        if no_gpu:
            self.border_title = "no GPU: CPU/RAM"
            self.tooltip = message.snap.gpu_error or None
        else:
            count = len(message.snap.gpus)
            self.border_title = f"{count} GPU{'s' if count > 1 else ''}"
        self.update(render_snapshot(message.snap))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.update(f"telemetry unavailable: {event.worker.error}")
