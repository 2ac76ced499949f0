"""Try a method's rewards before training: a modal that shows how sampled completions score.

The scoring loads a model, so it runs as the child `python -m workbench.cli rewards PROJECT
--json ...` with the method form's values; this screen only shows its table. Typing a
completion and pressing enter scores that text for every prompt instead (fast: no model).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Static

from screens.data.source import ChildError, run_json
from screens.messages import forward_failure
from workbench.terminal import printable

REWARDS_COMMAND = (sys.executable, "-m", "workbench.cli", "rewards")
EXCERPT = 56


def dry_run_argv(command: Sequence[str], project: str, method: str, values: dict[str, str],
                 datasets: Sequence[str], completion: str | None = None) -> list[str]:
    """The child's command line: the form's values as --set, the datasets, an optional text to score."""
    argv = [*command, project, "--method", method, "--json"]
    for key, value in values.items():
        argv += ["--set", f"{key}={value}"]
    for name in datasets:
        argv += ["--dataset", name]
    if completion is not None:
        argv += ["--completion", completion]
    return argv


def excerpt(text: str, width: int = EXCERPT) -> str:
    flat = printable(" ".join(str(text).split()))
    return flat if len(flat) <= width else flat[:width - 1] + "…"


def score_cell(value: float | None) -> Text:
    return Text("-" if value is None else f"{value:.2f}", justify="right")


class RewardDryRun(ModalScreen[None]):
    """Samples a few completions per prompt with the method's settings and tables their rewards."""

    DEFAULT_CSS = """
    RewardDryRun { align: center middle; }
    RewardDryRun #dialog { width: 90%; height: 90%; border: thick $primary; background: $surface; padding: 1 2; }
    RewardDryRun .title { text-style: bold; padding-bottom: 1; }
    RewardDryRun #dry-status { height: auto; color: $text-muted; }
    RewardDryRun #dry-table { height: 1fr; margin-top: 1; }
    RewardDryRun #dry-completion { margin-top: 1; }
    RewardDryRun .keys { color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape", "close", "Close", id="reward_dry_run.close"),
        Binding("ctrl+r", "resample", "Sample again", id="reward_dry_run.resample"),
    ]

    def __init__(self, project: str, method: str, values: dict[str, str], datasets: list[str],
                 command: Sequence[str] = REWARDS_COMMAND) -> None:
        super().__init__()
        self.project, self.method = project, method
        self.values, self.datasets = dict(values), list(datasets)
        self.command = tuple(command)
        self.closed = False
        self.report: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"Reward dry run: {self.method} on '{self.project}'", classes="title", markup=False)
            yield Static("", id="dry-status", markup=False)
            yield DataTable(id="dry-table", zebra_stripes=True, cursor_type="row")
            yield Input(placeholder="type a completion and press enter to score it for every prompt",
                        id="dry-completion")
            yield Static("[b]enter[/b] score the text   [b]ctrl+r[/b] sample again   [b]escape[/b] close",
                         classes="keys")

    def on_mount(self) -> None:
        self.score(None)

    def action_resample(self) -> None:
        self.score(None)

    def action_close(self) -> None:
        self.closed = True
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.score(event.value)

    def score(self, completion: str | None) -> None:
        what = "scoring the text" if completion is not None else "sampling completions (loads the model)"
        self.set_status(Text(f"{what}…", style="italic"))
        self.run_child(dry_run_argv(self.command, self.project, self.method, self.values, self.datasets,
                                    completion))

    @work(thread=True, exclusive=True, group="reward_dry_run", exit_on_error=False, name="Trying the rewards")
    def run_child(self, argv: list[str]) -> None:
        try:
            report = run_json(argv, lambda: self.closed)
        except (ChildError, OSError) as exc:
            if not self.closed:
                self.app.call_from_thread(self.set_status, Text(f"✖ {printable(exc)}", style="bold"))
            return
        if report is not None and not self.closed:
            self.app.call_from_thread(self.show, report)

    def set_status(self, message: Text | str) -> None:
        self.query_one("#dry-status", Static).update(message)

    def show(self, report: dict[str, Any]) -> None:
        self.report = report
        names = [r["name"] for r in report["rewards"]]
        table = self.query_one("#dry-table", DataTable)
        table.clear(columns=True)
        table.add_columns("prompt", "completion", *(Text(printable(n)) for n in names), "total")
        for group in report["prompts"]:
            for i, row in enumerate(group["rows"]):
                prompt = f"{group['index']}: {excerpt(group['prompt'], 24)}" if i == 0 else ""
                table.add_row(Text(prompt), Text(excerpt(row["completion"]) or "(empty)"),
                              *(score_cell(row["scores"].get(n)) for n in names), score_cell(row["total"]))
        weights = ", ".join(f"{r['name']} x{r['weight']:g}" for r in report["rewards"])
        source = f"sampled from {report['model']}" if report["sampled"] else "the text you typed"
        lines = [f"{weights}; {source}"] + [f"⚠ {w}" for w in report["warnings"]]
        self.set_status(printable("\n".join(lines)))

    def on_worker_state_changed(self, event) -> None:
        forward_failure(self, event)
