"""Hold out part of a dataset for evaluation: a small modal asks how much, a child process splits.

The split itself is `python -m workbench.cli split PROJECT DATASET --eval-fraction F`
(or `--eval-count N`), run as a child like every other data command; its one line
of output is the result shown to the person.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static
from textual.worker import WorkerState

from screens.data.source import ChildError, last_error_line
from screens.messages import forward_failure
from workbench.project import DatasetEntry
from workbench.terminal import printable

SPLIT_TIMEOUT = 300


def size_args(text: str) -> list[str]:
    """A fraction (0.1, 10%) as --eval-fraction, a count (50) as --eval-count; ValueError otherwise."""
    text = text.strip()
    if text.isdigit():
        if int(text) < 1:
            raise ValueError("Hold out at least 1 record.")
        return ["--eval-count", text]
    try:
        fraction = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise ValueError(f"'{text}' is neither a fraction (0.1, 10%) nor a count (50).") from None
    if not 0 < fraction < 1:
        raise ValueError(f"A fraction lies between 0 and 1 (or 0% and 100%), not {text}.")
    return ["--eval-fraction", f"{fraction:g}"]


def run_split(command: Sequence[str], project: str, dataset: str, size: list[str]) -> str:
    """The child's one-line result; ChildError with its error line when it fails."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        done = subprocess.run([*command, project, dataset, *size], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, env=env, timeout=SPLIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ChildError(f"`workbench split` did not finish within {SPLIT_TIMEOUT} s.") from None
    if done.returncode != 0:
        raise ChildError(last_error_line(done.stderr, done.returncode))
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    return lines[-1] if lines else "Split done."


class SplitModal(ModalScreen[str | None]):
    """Asks how much to hold out, runs the split, and is dismissed with its one-line result
    (None when cancelled); a refused size or a failed split is shown here, to be corrected."""

    DEFAULT_CSS = """
    SplitModal { align: center middle; }
    SplitModal #dialog { width: 70; height: auto; border: thick $primary; background: $surface; padding: 1 2; }
    SplitModal .title { text-style: bold; padding-bottom: 1; }
    SplitModal #split-size { margin-top: 1; }
    SplitModal #split-error { color: $text-error; height: auto; }
    SplitModal .keys { color: $text-muted; padding-top: 1; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="split.cancel")]

    def __init__(self, project: str, entry: DatasetEntry, command: Sequence[str]) -> None:
        super().__init__()
        self.project, self.entry, self.command = project, entry, tuple(command)
        self.busy = False

    def compose(self) -> ComposeResult:
        name = printable(self.entry.name)
        with Vertical(id="dialog"):
            yield Static(f"Hold out part of '{name}' ({self.entry.records:,} records) for evaluation",
                         classes="title", markup=False)
            yield Static(f"A fraction (0.1 or 10%) or a number of records; they move to '{name}-eval'.",
                         markup=False)
            yield Input("0.1", id="split-size")
            yield Static(id="split-error", markup=False)
            yield Static("[b]enter[/b] split   [b]escape[/b] cancel", classes="keys")

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#split-error", Static).update("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.busy:
            return
        try:
            size = size_args(event.value)
        except ValueError as exc:
            self.query_one("#split-error", Static).update(printable(exc))
            return
        self.busy = True
        self.query_one("#split-error", Static).update(Text("splitting…", style="italic"))
        self.split(size)

    @work(thread=True, exit_on_error=False, name="Splitting the dataset")
    def split(self, size: list[str]) -> None:
        try:
            line = run_split(self.command, self.project, self.entry.name, size)
        except (ChildError, OSError) as exc:
            self.app.call_from_thread(self.failed, str(exc))
            return
        self.app.call_from_thread(self.dismiss, line)

    def failed(self, error: str) -> None:
        self.busy = False
        self.query_one("#split-error", Static).update(Text(f"✖ {printable(error)}", style="bold"))

    def action_cancel(self) -> None:
        if not self.busy:
            self.dismiss(None)

    def on_worker_state_changed(self, event) -> None:
        if event.worker.is_finished and event.worker.name == "Splitting the dataset":
            self.busy = self.busy and event.state == WorkerState.SUCCESS
        forward_failure(self, event)
