"""The statistics of a project's data: kinds, token lengths, truncation, preflight findings.

Filled from the JSON of `workbench data PROJECT --json`. The figures are of the selected
dataset or of all of them (`scope`), cut at the project's max length or a chosen one;
a change of either posts `OptionsChanged` up to the screen, which asks again.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Label, Select, Static

from screens.widgets.histogram import Histogram
from workbench.terminal import printable


def describe_tokens(tokens: dict) -> Text:
    text = Text()
    for i, key in enumerate(("min", "median", "p95", "max")):
        value = tokens.get(key)
        text.append(("\n" if i == 2 else "  " if i else "") + f"{key} ", style="dim")
        text.append(f"{value:g}" if isinstance(value, (int, float)) else "–")
    return text


def describe_findings(preflight: dict) -> Text:
    errors, warnings = preflight.get("errors") or [], preflight.get("warnings") or []
    if not errors and not warnings:
        return Text("✔ no problems found", style="green")
    text = Text()
    for line in errors:
        text.append(f"✖ {printable(line)}\n", style="bold red")
    for line in warnings:
        text.append(f"⚠ {printable(line)}\n", style="yellow")
    text.rstrip()
    return text


class DataStats(VerticalScroll):
    """The right-hand panel of the data screen."""

    DEFAULT_CSS = """
    DataStats { border: round $primary; border-title-color: $text; padding: 0 1; }
    DataStats:focus-within { border: round $accent; }
    DataStats #max-row, DataStats #scope-row { height: auto; }
    DataStats #max-row Label { padding: 1 1 0 0; }
    DataStats #scope-row Label { padding-right: 1; }
    DataStats #stats-scope { width: 1fr; }
    DataStats #max-length { width: 14; }
    DataStats .head { text-style: bold; color: $accent; padding-top: 1; }
    DataStats #stats-status { color: $text-muted; }
    DataStats #stats-status.error { color: $text-error; }
    """

    class OptionsChanged(Message):
        """Another scope or max length was chosen; `submitted` when typed into the max length."""

        def __init__(self, submitted: bool = False) -> None:
            super().__init__()
            self.submitted = submitted

    def __init__(self, max_length: int | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.max_length = max_length  # the one the figures were counted at
        self.chosen_max_length: int | None = None  # None: the project's own setting
        self.scope = "dataset"  # or "all": every dataset of the project together
        self.border_title = "statistics"

    def compose(self) -> ComposeResult:
        with Horizontal(id="scope-row"):
            yield Label("of")
            yield Select([("the selected dataset", "dataset"), ("all datasets", "all")], value="dataset",
                         allow_blank=False, id="stats-scope", compact=True)
        yield Static("counting tokens…", id="stats-status")
        yield Static(id="kinds")
        with Horizontal(id="max-row"):
            yield Label("max length")
            yield Input(str(self.max_length or ""), placeholder="project", id="max-length", type="integer")
        yield Static("token lengths", classes="head")
        yield Static(id="tokens")
        yield Histogram(id="histogram")
        yield Static(id="truncated")
        yield Static("preflight", classes="head")
        yield Static(id="preflight")

    @on(Select.Changed, "#stats-scope")
    def _scope_chosen(self, event: Select.Changed) -> None:
        event.stop()
        if isinstance(event.value, str) and event.value != self.scope:
            self.scope = event.value
            self.post_message(self.OptionsChanged())

    @on(Input.Submitted, "#max-length")
    def _max_length_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value.strip()
        if value and (not value.isdigit() or int(value) <= 0):
            self.notify("The max length is a positive number of tokens.", severity="warning")
            return
        self.chosen_max_length = int(value) if value else None
        self.post_message(self.OptionsChanged(submitted=True))

    def show_busy(self) -> None:
        status = self.query_one("#stats-status", Static)
        status.remove_class("error")
        status.update("counting tokens…")

    def show_error(self, error: str) -> None:
        status = self.query_one("#stats-status", Static)
        status.add_class("error")
        status.update(Text(f"✖ {printable(error)}"))

    def show(self, stats: dict) -> None:
        status = self.query_one("#stats-status", Static)
        status.remove_class("error")
        sets = stats.get("datasets") or []
        records = sum(int(d.get("records", 0)) for d in sets if isinstance(d, dict))
        status.update(f"{records:,} records in {len(sets)} dataset{'s' if len(sets) != 1 else ''}")
        kinds = Text()
        for kind, count in (stats.get("kinds") or {}).items():
            kinds.append(f"{printable(kind)} ", style="bold")
            kinds.append(f"{count:,}  ")
        self.query_one("#kinds", Static).update(kinds)
        tokens = stats.get("tokens") or {}
        max_length = tokens.get("max_length")
        if isinstance(max_length, int):
            self.max_length = max_length
            field = self.query_one("#max-length", Input)
            if not field.has_focus:
                field.value = str(max_length)
        self.query_one("#tokens", Static).update(describe_tokens(tokens))
        self.query_one(Histogram).show(tokens.get("histogram") or [], self.max_length)
        cut = int(tokens.get("truncated") or 0)
        self.query_one("#truncated", Static).update(
            Text(f"{cut:,} record{'s' if cut != 1 else ''} over {self.max_length} tokens: cut",
                 style="bold yellow" if cut else "green"))
        self.query_one("#preflight", Static).update(describe_findings(stats.get("preflight") or {}))
