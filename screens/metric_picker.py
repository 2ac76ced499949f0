"""A modal that lists every metric a run logged, with its latest value, to chart one of them.

Typing narrows the list (every word must appear in the name); enter charts the highlighted
metric, escape keeps the chart as it was.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from screens.run_metrics import RunMetrics
from screens.widgets.metric_chart import number
from workbench.terminal import printable


def matches(name: str, query: str) -> bool:
    name = name.lower()
    return all(word in name for word in query.lower().split())


class MetricPicker(ModalScreen[str | None]):
    """Dismissed with the chosen metric's name, or None."""

    DEFAULT_CSS = """
    MetricPicker { align: center middle; }
    MetricPicker #dialog { width: 70; max-width: 95%; height: 80%; border: thick $primary;
                           background: $surface; padding: 0 1; }
    MetricPicker .title { text-style: bold; }
    MetricPicker #metric-list { height: 1fr; }
    MetricPicker .keys { color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="metric_picker.cancel"),
        Binding("down", "move(1)", "Next", show=False, id="metric_picker.down"),
        Binding("up", "move(-1)", "Previous", show=False, id="metric_picker.up"),
    ]

    def __init__(self, metrics: RunMetrics, current: str = "") -> None:
        super().__init__()
        self.metrics, self.current = metrics, current
        self.names = metrics.names()

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"Chart a metric ({len(self.names)} logged)", classes="title")
            yield Input(placeholder="type to narrow the list", id="metric-filter")
            yield OptionList(id="metric-list")
            yield Static("[b]enter[/b] chart it   [b]escape[/b] cancel", classes="keys")

    def on_mount(self) -> None:
        self._fill("")

    def _fill(self, query: str) -> None:
        listed = self.query_one("#metric-list", OptionList)
        listed.clear_options()
        names = [name for name in self.names if matches(name, query)]
        width = max((len(name) for name in names), default=0)
        for name in names:
            series = self.metrics.get(name)
            label = Text.assemble(printable(name).ljust(width + 2),
                                  (number(series.last if series else None).rjust(10), "bold"),
                                  (f"  {len(series or [])} points", "dim"))
            listed.add_option(Option(label, id=name))
        if names:
            listed.highlighted = names.index(self.current) if self.current in names else 0

    def on_input_changed(self, event: Input.Changed) -> None:
        self._fill(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        listed = self.query_one("#metric-list", OptionList)
        if listed.highlighted is not None:
            self.dismiss(listed.get_option_at_index(listed.highlighted).id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_move(self, delta: int) -> None:
        listed = self.query_one("#metric-list", OptionList)
        if listed.option_count:
            at = (listed.highlighted or 0) + delta
            listed.highlighted = min(listed.option_count - 1, max(0, at))

    def action_cancel(self) -> None:
        self.dismiss(None)
