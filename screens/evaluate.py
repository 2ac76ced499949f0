"""Start an evaluation: on what (the eval split, or datasets of the project picked instead, as `workbench
eval --dataset`), how many examples the few-shot baseline shows, which metrics, an optional reward model
and judge. Everything is checked by the engine before a job starts (`evaluate.job.start`, the
same as `workbench eval`); a refusal is shown here in one line and the modal stays open.

The metrics offered are the evaluation's own (exact match, JSON fields) and the rule rewards of the
library; those the records call for are ticked, as the CLI chooses them when none is named. Picking other
datasets reads them again (`read_setup`): the line above the form, the metrics ticked and the few-shot
examples follow them. The eval split and picked datasets exclude each other: ticking one unticks the
other, and unticking every dataset goes back to the eval split. The modal returns the job's folder, or None when it was cancelled or every result was already up to date.
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
from workbench.evaluate import harness
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
MAX_METRIC_ROWS = 10
SPLIT = ""  # the "Evaluate on" option of the eval split (the datasets' options are their names)


@dataclass
class Setup:
    """What the form offers, read in a thread: the eval split, the metrics it calls for, the models."""

    records: int = 0
    datasets: list[str] = field(default_factory=list)  # those evaluated on
    split: list[str] = field(default_factory=list)  # the eval split's datasets
    offered: list[tuple[str, str, int]] = field(default_factory=list)  # the others: (name, split, records)
    chosen: list[str] = field(default_factory=list)
    shots: bool = False  # the train split has examples a prompt can show
    reward_models: list[str] = field(default_factory=list)  # reward runs with a model
    judges: list[tuple[str, str]] = field(default_factory=list)  # (label, ref)
    tasks: list[str] | None = None  # lm-eval tasks of the project's lm-eval/ folder; None: lm-eval not installed
    error: str = ""  # why no evaluation can start (no eval split)


def read_setup(project: str, run_id: str = "", datasets: list[str] | tuple[str, ...] = ()) -> Setup:
    """What the form offers for an evaluation on the eval split, or on `datasets` when named."""
    setup = Setup()
    proj = projects.load(project)
    try:
        if run_id:
            eval_job.check_generates(store.get(project, run_id))  # an embedding model has no evaluation: say so first
    except store.RunError as exc:
        setup.error = str(exc)
        return setup
    setup.split = [d.name for d in proj.datasets if d.split == "eval"]
    # each dataset outside the eval split; those in it too when it has several (to evaluate on one of them)
    setup.offered = [(d.name, d.split, d.records) for d in proj.datasets
                     if d.split != "eval" or len(setup.split) > 1]
    try:
        setup.datasets, examples = eval_examples(proj, names=datasets)
    except EvalError as exc:
        setup.error = str(exc)
        return setup
    setup.records = len(examples)
    setup.chosen = mt.choose([e.reference for e in examples], {k for e in examples for k in e.columns})
    setup.shots = bool(shot_pool(proj, examples))
    runs = store.list_runs(project)
    setup.reward_models = [r.id for r in runs if r.method == REWARD_METHOD and r.output is not None]
    setup.judges = [(c.label, c.ref) for c in store.model_choices(project, LM_METHODS)]
    setup.tasks = harness.project_tasks(project) if harness.installed() else None
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
        self.on: list[str] = []  # the datasets picked instead of the eval split
        self.read_for: list[str] = []  # the datasets `setup` was read for
        self.shots = ""  # the few-shot k last proposed (a person's own value is kept)
        self.models_shown = False
        self.starting = False
        self.what = Text()

    def compose(self) -> ComposeResult:
        with Vertical(id="box") as box:
            box.border_title = f"Evaluate {self.run_id}" if self.run_id else "Evaluate the base model"
            box.border_subtitle = "ctrl+s start · esc cancel"
            yield Static("Reading the eval split…", id="what")
            with Horizontal(id="on-row"):
                yield Label("Evaluate on", classes="name")
                yield SelectionList[str](id="on", compact=True)
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
            with Horizontal(classes="row", id="lm-eval-row"):
                yield Label("lm-eval tasks", classes="name")
                yield Input(id="lm-eval", compact=True, placeholder="none (task names, space between)")
            yield Static(id="error")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#judge-row").display = bool(self.run_id)  # a judge compares a run with the base
        self.query_one("#on-row").display = False  # until the project's datasets are read
        self.query_one("#on").tooltip = ("The eval split, or datasets of the project instead (space ticks): their "
                                         "results are kept apart from the eval split's")
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, name="Reading the eval split")
    def load(self, datasets: tuple[str, ...] = ()) -> None:
        setup = read_setup(self.project, self.run_id, datasets)
        self.app.call_from_thread(self.show, setup, list(datasets))

    def show(self, setup: Setup, on: list[str] | None = None) -> None:
        if (on or []) != self.on:
            return  # read for a choice since changed
        first, self.setup, self.read_for = self.setup is None, setup, list(self.on)
        if first:
            self.show_choices(setup)
        choosing = bool(setup.offered)  # none when the run cannot be evaluated at all
        for widget in self.query_one("#box").children:  # an error: the reason alone (and the datasets to pick)
            widget.display = {"error": bool(setup.error), "on-row": choosing,
                              "judge-row": not setup.error and bool(self.run_id),
                              "lm-eval-row": not setup.error and setup.tasks is not None}.get(widget.id,
                                                                                                  not setup.error)
        if setup.error:
            self.show_error(setup.error + (" Or tick one of the project's datasets to evaluate on."
                                           if choosing and not setup.split and not self.on else ""))
            return
        self.show_error("")
        self.query_one("#what", Static).update(self.describe(setup))
        shots = self.query_one("#shots", Input)
        if first or shots.value == self.shots:  # a k the person typed stays
            self.shots = shots.value = str(FEW_SHOT if setup.shots else 0)
        metrics = self.query_one("#metrics", SelectionList)
        metrics.clear_options()
        for name in mt.known():
            metrics.add_option((Text.assemble(name, ("  " + metric_help(name), "dim")), name, name in setup.chosen))
        self.call_after_refresh(self.fit)
        if not self.models_shown:  # once: a model the person chose stays chosen
            self.models_shown = True
            self.query_one("#reward-model", Select).set_options([(printable(r), r) for r in setup.reward_models])
            self.query_one("#reward-model", Select).disabled = not setup.reward_models
            self.query_one("#judge", Select).set_options([(printable(label), ref) for label, ref in setup.judges])
            self.query_one("#lm-eval", Input).tooltip = (
                "Tasks of the LM Evaluation Harness, scored for the base and the run: "
                + (f"this project's lm-eval/ folder has {', '.join(setup.tasks)}" if setup.tasks else
                   "put task YAML files in the project's lm-eval/ folder")
                + ", or the harness's own task names (their data comes from the hub)")

    def on_resize(self) -> None:
        self.call_after_refresh(self.fit)

    def fit(self) -> None:
        """The metrics list as tall as the screen leaves it (3 to 10 rows): the whole form in view at 24 rows."""
        box, metrics = self.query_one("#box"), self.query_one("#metrics", SelectionList)
        others = sum(w.outer_size.height + w.styles.margin.top + w.styles.margin.bottom
                     for w in box.children if w.display and w is not metrics)
        room = self.size.height - 1 - box.styles.border.spacing.height - others - metrics.styles.margin.bottom
        metrics.styles.max_height = max(3, min(MAX_METRIC_ROWS, room))  # footer: 1

    def describe(self, setup: Setup) -> Text:
        who = "the base, the few-shot baseline and this run answer" if self.run_id else \
            "the base model (and its few-shot baseline) answers"
        if not self.on:
            self.what = Text(printable(
                f"On {setup.records} held-out record(s) of {', '.join(setup.datasets)}, {who} each prompt; the "
                "answers are scored. Results already taken with the same settings are kept."))
            return self.what
        trained = [name for name, split, _ in setup.offered if name in self.on and split == "train"]
        seen = " Training records: a run may score well on them for having seen them." if trained and self.run_id \
            else ""
        self.what = Text(printable(
            f"On {setup.records} record(s) of {', '.join(setup.datasets)}, {who} each prompt; the answers are scored "
            f"and kept apart from the eval split's results.{seen}"))
        return self.what

    def show_choices(self, setup: Setup) -> None:
        """The "Evaluate on" options: the eval split (ticked) when there is one, then the other datasets."""
        choices = self.query_one("#on", SelectionList)
        choices.clear_options()
        if setup.split:
            choices.add_option((Text.assemble("the eval split", ("  " + ", ".join(setup.split), "dim")), SPLIT, True))
        for name, split, records in setup.offered:
            choices.add_option((Text.assemble(printable(name), (f"  {split} · {records} records", "dim")), name))

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged) -> None:
        """The eval split or datasets, not both: the one ticked last wins; nothing ticked is the eval split."""
        choices = event.selection_list
        if choices.id != "on":
            return
        ticked = set(choices.selected)
        names = [o.value for o in choices.options if o.value != SPLIT and o.value in ticked]
        has_split = bool(self.setup and self.setup.split)
        if SPLIT in ticked and names:
            if self.on:  # the eval split ticked over datasets
                names = []
                for name in ticked - {SPLIT}:
                    choices.deselect(name)
            else:
                choices.deselect(SPLIT)
        elif not names and has_split and SPLIT not in ticked:
            choices.select(SPLIT)
        if names != self.on:
            self.on = names
            self.query_one("#what", Static).update(Text("Reading " + (", ".join(names) or "the eval split") + "…"))
            self.load(tuple(names))

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
                "datasets": list(self.on),
                "lm_eval": self.query_one("#lm-eval", Input).value.replace(",", " ").split(),
                "reward_model": NONE if reward is Select.NULL else str(reward),
                "judge_model": NONE if judge is Select.NULL or not self.run_id else str(judge)}

    def action_start(self) -> None:
        if self.setup is None or self.setup.error or self.starting or self.read_for != self.on:
            return  # nothing to start, or the form is still reading the datasets just picked
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
