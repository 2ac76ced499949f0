"""A modal that imports a data file into a project and shows what was kept and what was not.

The import runs as a child process (`workbench import ... --progress`), read line by line from a
thread worker: the UI process never parses a large file nor loads pyarrow or datasets.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Input, Label, ProgressBar, Select, Static, Switch

from screens.messages import forward_failure
from screens.widgets.footer import KeyFooter
from workbench.data.import_report import ImportReport
from workbench.data.importer import dataset_name_for, existing
from workbench.data.kinds import KINDS
from workbench.project import ProjectError
from workbench.terminal import printable

FORMATS_HELP = ("JSONL, JSON, CSV, TSV, Parquet or a save_to_disk folder (a DatasetDict: a dataset per split, "
                "test/validation held out). Kinds: chat (ShareGPT, Alpaca too), prompt/completion, preference "
                "(HH-RLHF dialogues too), ranked, unpaired_label (an answer marked good or bad), labelled, text, "
                "prompt, pair (anchor, positive), scored_pair (a, b, score). [b]→[/b] completes a path.")
ERROR_PREFIX = "workbench: error: "
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
        text.append(printable(f"Imported {report.imported} record(s) into dataset '{report.dataset}' ({kinds}).\n"),
                    style="bold green")
    else:
        text.append(printable(f"Nothing imported: no usable record in {Path(report.source).name}.\n"), style="bold red")
    for note in report.notes:
        text.append(printable(f"Note: {note}\n"))
    if report.duplicates:
        text.append(report.duplicates_text().replace("--dedupe", "the switch") + "\n", style="cyan")
    if not report.problems:
        text.append("No problems found.")
        return text
    count = len(report.problems) + report.omitted_problems
    text.append(f"{count} record(s) skipped:\n")
    for p in report.problems[:REPORT_LIMIT]:
        text.append(printable(f"  {p.where}: {p.reason}\n"), style="yellow")
    if count > REPORT_LIMIT:
        text.append(f"  ... and {count - REPORT_LIMIT} more\n", style="yellow")
    return text


def import_command(project: str, path: str, dataset: str | None, split: str, kind: str | None,
                   dedupe: bool, replace: bool = False) -> list[str]:
    command = [sys.executable, "-m", "workbench.cli", "import", project, str(Path(path).expanduser()),
               "--progress", "--split", split]
    if dataset:
        command += ["--dataset", dataset]
    if kind:
        command += ["--kind", kind]
    if dedupe:
        command.append("--dedupe")
    if replace:
        command.append("--replace")
    return command


class ImportScreen(ModalScreen[int]):
    """Dismissed with the number of records imported while it was open."""

    CSS_PATH = "importer.tcss"
    AUTO_FOCUS = "#path"  # the dialog scrolls on a short terminal, but typing goes to the path
    BINDINGS = [
        Binding("ctrl+s", "import_file", "Import", id="import.run"),
        Binding("escape", "close", "Close", id="import.close"),
    ]

    def __init__(self, project: str) -> None:
        super().__init__()
        self.project = project
        self.imported = 0
        self.replace_asked: str | None = None  # the dataset whose replacement the person was asked about

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield Static(f"Import data into [b]{self.project}[/b]", classes="title")
            yield Label("Data file or saved dataset folder")
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
                with Vertical():
                    yield Label("Record kind")
                    yield Select([("detect", "auto")] + [(k, k) for k in KINDS], value="auto",
                                 allow_blank=False, id="kind")
                with Vertical():
                    yield Label("Remove duplicates")
                    yield Switch(value=False, id="dedupe")
            yield Static(id="status", markup=False)
            yield ProgressBar(id="progress", show_eta=False)
            with VerticalScroll(id="report-box"):
                yield Static(id="report", markup=False)
            yield Static("[b]enter[/b] import   [b]escape[/b] close", classes="keys")
        yield KeyFooter()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_import_file()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.replace_asked = None  # another file or name: ask again

    def action_import_file(self) -> None:
        path = self.query_one("#path", Input).value.strip()
        if not path:
            self.show_status("Give the path of a data file.", error=True)
            self.query_one("#path", Input).focus()
            return
        dataset = self.query_one("#dataset", Input).value.strip() or None
        split = str(self.query_one("#split", Select).value)
        kind = str(self.query_one("#kind", Select).value)
        dedupe = self.query_one("#dedupe", Switch).value
        replace = self.replacing(dataset or dataset_name_for(Path(path).expanduser()))
        if replace is None:
            return
        self.show_status(f"Importing {path}…")
        self.query_one("#report", Static).update("")
        bar = self.query_one("#progress", ProgressBar)
        bar.update(total=None, progress=0)
        bar.display = True
        self.run_import(import_command(self.project, path, dataset, split, None if kind == "auto" else kind, dedupe,
                                       replace))

    def replacing(self, name: str) -> bool | None:
        """Whether the import replaces dataset `name`: False when there is none; None (not yet) while the
        person is asked; True once they pressed enter again on the same question."""
        try:
            previous = existing(self.project, name)
        except ProjectError:
            previous = None  # the import itself reports what is wrong
        if previous is None:
            self.replace_asked = None
            return False
        if self.replace_asked == name:
            self.replace_asked = None
            return True
        self.replace_asked = name
        self.show_status(f"Dataset '{name}' already holds {previous.records} record(s). Press enter again to "
                         "replace it (it is kept until the new records are complete), or give another dataset "
                         "name.", error=True)
        return None

    @work(thread=True, exclusive=True, exit_on_error=False, name="Importing the file")
    def run_import(self, command: list[str]) -> None:
        report = None
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                              text=True, encoding="utf-8", errors="replace") as child:
            for line in child.stdout:
                word, _, rest = line.rstrip("\n").partition(" ")
                if word == "progress":
                    done, total = (int(n) for n in rest.split())
                    self.app.call_from_thread(self.show_progress, done, total)
                elif word == "report":
                    report = ImportReport.from_dict(json.loads(rest))
            errors = child.stderr.read()
        if report is not None:
            self.app.call_from_thread(self.show_report, report)
            return
        message = errors.strip().splitlines()[-1] if errors.strip() else f"The import failed ({child.returncode})."
        self.app.call_from_thread(self.show_status, message.removeprefix(ERROR_PREFIX), True)

    def show_progress(self, done: int, total: int) -> None:
        if self.is_attached:
            self.query_one("#progress", ProgressBar).update(total=max(total, 1), progress=done)

    def show_status(self, text: str, error: bool = False) -> None:
        if not self.is_attached:
            return
        if error:
            self.query_one("#progress", ProgressBar).display = False
        status = self.query_one("#status", Static)
        status.update(printable(text))
        status.set_class(error, "error")

    def show_report(self, report) -> None:
        self.imported += report.imported
        if not self.is_attached:
            return
        self.show_status("")
        self.query_one("#report", Static).update(report_text(report))

    def action_close(self) -> None:
        self.dismiss(self.imported)

    def on_worker_state_changed(self, event) -> None:
        forward_failure(self, event)
