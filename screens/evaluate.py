"""Start an evaluation: how many examples the few-shot baseline shows, which metrics, an optional reward
model and judge. Everything is checked by the engine before a job starts (`evaluate.job.start`, the
same as `workbench eval`); a refusal is shown here in one line and the modal stays open.

The metrics offered are the evaluation's own (exact match, JSON fields) and the rule rewards of the
library; those the records call for are ticked, as the CLI chooses them when none is named. The modal
returns the job's folder, or None when it was cancelled or every result was already up to date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, SelectionList, Static

from screens.messages import forward_failure
from screens.widgets.footer import KeyFooter
from workbench import project as projects
from workbench.evaluate import job as eval_job
from workbench.evaluate import metrics as mt
from workbench.evaluate.heldout import EvalError, eval_examples, shot_pool
from workbench.jobs import launch, store
from workbench.rewards.library import LIBRARY, RewardError
from workbench.serve.catalog import LM_METHODS
from workbench.terminal import printable

FEW_SHOT = 3  # the baseline's examples when the train split has some
REWARD_METHOD = "reward"
NONE = ""


@dataclass
class Setup:
    """What the form offers, read in a thread: the eval split, the metrics it calls for, the models."""

    records: int = 0
    datasets: list[str] = field(default_factory=list)
    chosen: list[str] = field(default_factory=list)
    shots: bool = False  # the train split has examples a prompt can show
    reward_models: list[str] = field(default_factory=list)  # reward runs with a model
    judges: list[tuple[str, str]] = field(default_factory=list)  # (label, ref)
    error: str = ""  # why no evaluation can start (no eval split)


def read_setup(project: str, run_id: str = "") -> Setup:
    setup = Setup()
    proj = projects.load(project)
    try:
        if run_id:
            eval_job.check_generates(store.get(project, run_id))  # an embedding model has no evaluation: say so first
        setup.datasets, examples = eval_examples(proj)
    except (EvalError, store.RunError) as exc:
        setup.error = str(exc)
        return setup
    setup.records = len(examples)
    setup.chosen = mt.choose([e.reference for e in examples], {k for e in examples for k in e.columns})
    setup.shots = bool(shot_pool(proj, examples))
    runs = store.list_runs(project)
    setup.reward_models = [r.id for r in runs if r.method == REWARD_METHOD and r.output is not None]
    setup.judges = [(c.label, c.ref) for c in store.model_choices(project, LM_METHODS)]
    return setup


def metric_help(name: str) -> str:
    if name == mt.EXACT:
        return "the answer equals the reference"
    if name == mt.FIELDS:
        return "valid JSON, each field right"
    doc = (LIBRARY[name].__doc__ or "").strip().splitlines()
    return doc[0].rstrip(".") if doc else ""


class EvaluateScreen(ModalScreen[Path | None]):
    """Returns the started job's folder; None when cancelled or nothing needed taking again."""

    CSS_PATH = "styles/evaluate.tcss"
    AUTO_FOCUS = "#shots"
    BINDINGS = [
        Binding("ctrl+s", "start", "Start", id="evaluate.start"),
        Binding("escape", "cancel", "Cancel", id="evaluate.cancel"),
    ]

    def __init__(self, project: str, run_id: str = "") -> None:
        super().__init__()
        self.project, self.run_id = project, run_id
        self.setup: Setup | None = None
        self.starting = False
        self.what = Text()

    def compose(self) -> ComposeResult:
        with Vertical(id="box") as box:
            box.border_title = f"Evaluate {self.run_id}" if self.run_id else "Evaluate the base model"
            box.border_subtitle = "ctrl+s start · esc cancel"
            yield Static("Reading the eval split…", id="what")
            with Horizontal(classes="row"):
                yield Label("Few-shot k", classes="name")
                yield Input("0", id="shots", type="integer", compact=True,
                            tooltip="Train examples in the base model's prompt: the baseline fine-tuning must beat "
                                    "(0: none)")
            yield Label("Metrics (space ticks; the ticked ones fit the records)", classes="name wide")
            yield SelectionList[str](id="metrics", compact=True)
            with Horizontal(classes="row"):
                yield Label("Reward model", classes="name")
                yield Select([], prompt="none", id="reward-model", compact=True)
            with Horizontal(classes="row", id="judge-row"):
                yield Label("Judge", classes="name")
                yield Select([], prompt="none", id="judge", compact=True,
                             tooltip="A model that grades the run's answers against the base's: its win rate")
            yield Static(id="error")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#judge-row").display = bool(self.run_id)  # a judge compares a run with the base
        self.load()

    @work(thread=True, exit_on_error=False, name="Reading the eval split")
    def load(self) -> None:
        setup = read_setup(self.project, self.run_id)
        self.app.call_from_thread(self.show, setup)

    def show(self, setup: Setup) -> None:
        self.setup = setup
        if setup.error:  # nothing to choose: the reason alone
            for widget in self.query_one("#box").children:
                widget.display = widget.id == "error"
            self.show_error(setup.error)
            return
        who = "the base, the few-shot baseline and this run answer" if self.run_id else \
            "the base model (and its few-shot baseline) answers"
        self.what = Text(printable(
            f"On {setup.records} held-out record(s) of {', '.join(setup.datasets)}, {who} each prompt; the answers "
            "are scored. Results already taken with the same settings are kept."))
        self.query_one("#what", Static).update(self.what)
        self.query_one("#shots", Input).value = str(FEW_SHOT if setup.shots else 0)
        metrics = self.query_one("#metrics", SelectionList)
        metrics.clear_options()
        for name in mt.known():
            metrics.add_option((Text.assemble(name, ("  " + metric_help(name), "dim")), name, name in setup.chosen))
        self.query_one("#reward-model", Select).set_options([(printable(r), r) for r in setup.reward_models])
        self.query_one("#reward-model", Select).disabled = not setup.reward_models
        self.query_one("#judge", Select).set_options([(printable(label), ref) for label, ref in setup.judges])

    def show_error(self, text: str) -> None:
        error = self.query_one("#error", Static)
        error.update(Text(printable(text)))
        error.display = bool(text)

    def options(self) -> dict | None:
        try:
            shots = int(self.query_one("#shots", Input).value or "0")
        except ValueError:
            shots = -1
        if shots < 0:
            self.show_error("Few-shot k is a whole number, 0 or more.")
            return None
        reward = self.query_one("#reward-model", Select).value
        judge = self.query_one("#judge", Select).value
        return {"few_shot": shots, "metrics": list(self.query_one("#metrics", SelectionList).selected),
                "reward_model": NONE if reward is Select.NULL else str(reward),
                "judge_model": NONE if judge is Select.NULL or not self.run_id else str(judge)}

    def action_start(self) -> None:
        if self.setup is None or self.setup.error or self.starting:
            return
        options = self.options()
        if options is None:
            return
        self.starting = True
        self.show_error("")
        self.query_one("#what", Static).update("Checking and starting…")
        self.start(options)

    @work(thread=True, exit_on_error=False, name="Starting the evaluation")
    def start(self, options: dict) -> None:
        try:
            folder = eval_job.start(self.project, self.run_id, **options)
        except (EvalError, store.RunError, RewardError, projects.ProjectError, launch.LaunchError, ValueError,
                OSError) as exc:
            self.app.call_from_thread(self.refused, str(exc))
            return
        self.app.call_from_thread(self.started, folder)

    def refused(self, message: str) -> None:
        self.starting = False
        self.query_one("#what", Static).update(self.what)
        self.show_error(message)

    def started(self, folder: Path | None) -> None:
        if folder is None:
            self.app.notify("Every result is up to date: nothing to take again.", title="Evaluation")
        else:
            self.app.notify(f"Evaluation {folder.name} started.", title="Evaluation")
        self.dismiss(folder)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_worker_state_changed(self, event) -> None:
        forward_failure(self, event)
