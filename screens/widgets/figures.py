"""What the panels of figures share: a bordered panel, a grid of dim labels and values, a bar."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

BAR_WIDTH = 10


def bar(fraction: float | None, width: int = BAR_WIDTH, style: str | None = None) -> Text:
    """A bar; a load bar (no `style`) turns yellow then red as it fills."""
    if fraction is None:
        return Text("?".ljust(width), style="dim")
    fraction = min(1.0, max(0.0, fraction))
    full = round(fraction * width)
    if style is None:
        style = "red" if fraction >= 0.9 else "yellow" if fraction >= 0.7 else "green"
    return Text.assemble(("█" * full, style), ("░" * (width - full), "dim"))


def figures_table() -> Table:
    """Two columns, a dim label and its value, one figure a row."""
    table = Table.grid(padding=(0, 1))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(no_wrap=True)
    return table


class FigurePanel(Static):
    """A panel of figures under a border title; a subclass sets the border's colour."""

    DEFAULT_CSS = """
    FigurePanel {
        border-title-color: $text;
        padding: 0 1;
        height: auto;
    }
    """

    def __init__(self, placeholder: str, title: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(placeholder, id=id, classes=classes)
        self.border_title = title
