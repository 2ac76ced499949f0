"""The GGUF part of the export form: quant types to write (common ones first, "more…" shows all),
and a line per file written and per verification, from the export's `artifact` events."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, Static

from screens.widgets.toggles import MarkedCheckbox

from workbench.export.gguf import human_size
from workbench.export.llama_tools import COMMON_QUANTS, ToolsError, quant_types
from workbench.run.events import Artifact
from workbench.terminal import printable

DEFAULT_CHECKED = ("Q4_K_M",)


class QuantPicker(Vertical):
    DEFAULT_CSS = """
    QuantPicker { height: auto; }
    QuantPicker Horizontal { height: auto; }
    QuantPicker Checkbox { width: auto; border: none; padding: 0 1; }
    QuantPicker #more { min-width: 10; border: none; height: 1; }
    """

    def compose(self) -> ComposeResult:
        with Horizontal(id="quants"):
            for name in COMMON_QUANTS:
                yield MarkedCheckbox(name, name in DEFAULT_CHECKED, id=f"q-{name}")
            yield Button("more…", id="more")

    @property
    def selected(self) -> list[str]:
        return [str(box.label) for box in self.query(Checkbox) if box.value]

    @on(Button.Pressed, "#more")
    def show_all(self) -> None:
        try:
            names = sorted(quant_types())
        except ToolsError as exc:
            self.notify(printable(exc), severity="error", timeout=10, markup=False)
            return
        self.query_one("#more", Button).remove()
        extra = [name for name in names if name not in COMMON_QUANTS]
        row = Horizontal(*(MarkedCheckbox(name, False, id=f"q-{name}") for name in extra), id="all-quants")
        row.styles.height = "auto"
        row.styles.layout = "grid"
        row.styles.grid_size_columns = 6
        self.mount(row)


def file_line(event: Artifact) -> Text:
    """The results-list line of a file written (`✔ NAME (SIZE)`) or of its verification."""
    name = printable(Path(event.path).name)
    if not event.verification:
        return Text.assemble(("✔ ", "green"), f"{name} ({human_size(event.size)})")
    return Text.assemble(("  ✔ " if event.passed else "  • ", "green" if event.passed else "yellow"),
                         f"{name}: {printable(event.verification)}")


class FileLines(Static):
    """The files written so far, with their verification summaries."""

    def on_mount(self) -> None:
        self.lines: list[Text] = []

    def add(self, text: Text) -> None:
        self.lines.append(text)
        self.update(Text("\n").join(self.lines))

    def clear(self) -> None:
        self.lines = []
        self.update("")
