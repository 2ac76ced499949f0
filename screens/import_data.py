"""A modal that imports a JSONL file into a project and shows what was kept and what was not."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Footer, Input, Label, Select, Static

from screens.messages import forward_failure

FORMATS_HELP = ("One JSON object a line: chat ({\"messages\": [...]}), prompt/completion, "
                "preference (prompt/chosen/rejected) or plain text. [b]→[/b] completes a path.")
REPORT_LIMIT = 50


class PathSuggester(Suggester):
    """Completes the last part of a path from the files on disk."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        return await asyncio.to_thread(complete_path, value)


def complete_path(value: str) -> str | None:
    """The first file or folder whose name starts with the last part of `value`."""
    if not value:
        return None
    head, sep, prefix = value.rpartition("/")
    folder = Path(os.path.expanduser(head + sep)) if sep else Path(".")
    try:
        names = sorted(n for n in os.listdir(folder) if n.startswith(prefix) and not n.startswith("."))
    except OSError:
        return None
    if not names:
        return None
    full = head + sep + names[0]
    return full + "/" if (folder / names[0]).is_dir() else full


def report_text(report) -> Text:
    """What was imported (green, or red when nothing was), then each skipped line (yellow)."""
    kinds = ", ".join(f"{n} {k}" for k, n in report.kinds.most_common())
    text = Text()
    if report.imported:
        text.append(f"Imported {report.imported} record(s) into dataset '{report.dataset}' ({kinds}).\n",
                    style="bold green")
    else:
        text.append(f"Nothing imported: no usable record in {Path(report.source).name}.\n", style="bold red")
    if not report.problems:
        text.append("No problems found.")
        return text
    text.append(f"{len(report.problems)} line(s) skipped:\n")
    for p in report.problems[:REPORT_LIMIT]:
        text.append(f"  line {p.line}: {p.reason}\n", style="yellow")
    if len(report.problems) > REPORT_LIMIT:
        text.append(f"  ... and {len(report.problems) - REPORT_LIMIT} more\n", style="yellow")
    return text


class ImportScreen(ModalScreen[int]):
    """Dismissed with the number of records imported while it was open."""

    CSS_PATH = "styles/import_data.tcss"
    BINDINGS = [
        Binding("ctrl+s", "import_file", "Import", id="import.run"),
        Binding("escape", "close", "Close", id="import.close"),
    ]

    def __init__(self, project: str) -> None:
        super().__init__()
        self.project = project
        self.imported = 0

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"Import data into [b]{self.project}[/b]", classes="title")
            yield Label("JSONL file")
            yield Input(placeholder="path/to/data.jsonl", id="path", suggester=PathSuggester())
            yield Static(FORMATS_HELP, classes="help")
            with Horizontal(id="options"):
                with Vertical():
                    yield Label("Dataset name")
                    yield Input(placeholder="from the file name", id="dataset")
                with Vertical():
                    yield Label("Split")
                    yield Select([("train", "train"), ("eval (held out)", "eval")], value="train",
                                 allow_blank=False, id="split")
            yield Static(id="status", markup=False)
            with VerticalScroll(id="report-box"):
                yield Static(id="report", markup=False)
            yield Static("[b]enter[/b] import   [b]escape[/b] close", classes="keys")
        yield Footer()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_import_file()

    def action_import_file(self) -> None:
        path = self.query_one("#path", Input).value.strip()
        if not path:
            self.show_status("Give the path of a JSONL file.", error=True)
            self.query_one("#path", Input).focus()
            return
        dataset = self.query_one("#dataset", Input).value.strip() or None
        split = str(self.query_one("#split", Select).value)
        self.show_status(f"Importing {path}…")
        self.query_one("#report", Static).update("")
        self.run_import(path, dataset, split)

    @work(thread=True, exclusive=True, exit_on_error=False, name="Importing the file")
    def run_import(self, path: str, dataset: str | None, split: str) -> None:
        from workbench.data.importer import import_file
        from workbench.data.readers import UnsupportedFile
        from workbench.project import ProjectError

        try:
            report = import_file(self.project, Path(path).expanduser(), name=dataset, split=split)
        except (OSError, UnsupportedFile, ProjectError, UnicodeDecodeError) as exc:
            self.app.call_from_thread(self.show_status, str(exc) or type(exc).__name__, True)
            return
        self.app.call_from_thread(self.show_report, report)

    def show_status(self, text: str, error: bool = False) -> None:
        status = self.query_one("#status", Static)
        status.update(text)
        status.set_class(error, "error")

    def show_report(self, report) -> None:
        self.imported += report.imported
        self.show_status("")
        self.query_one("#report", Static).update(report_text(report))

    def action_close(self) -> None:
        self.dismiss(self.imported)

    def on_worker_state_changed(self, event) -> None:
        forward_failure(self, event)
