"""Start a sampling session to rank, or go back to one: the modal behind `k` on the project screen.

A new session is a run of the method `sample` (a worker process that keeps a few groups of
candidates ahead of the person); the ranking screen replaces this modal as soon as the
worker is launched, and shows what the sampler is doing while it loads its model.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label, Select, Static, TextArea

from screens.messages import forward_failure
from screens.method import ParamValidator
from workbench import project as projects
from workbench.jobs import store
from workbench.params import ParamError, coerce, describe
from workbench.ranking import candidates, scoring
from workbench.ranking import rankings as ranking
from workbench.ranking.sample_params import AUTO, PROMPT_KINDS, SampleParams
from workbench.registry.specs import make_spec
from workbench.terminal import printable

TYPED = "__typed__"
NUMBERS = (("n", "Candidates"), ("temperature", "Temperature"), ("top_p", "Top-p"),
           ("max_new_tokens", "Max tokens"), ("prompts", "Prompts"))
# What a 0 means, under the numbers (in their labels it was cut at 100 columns).
ZEROS = (f"Max tokens 0: chosen for the device ({AUTO['cpu'][0]} on a CPU, {AUTO['cuda'][0]} on a GPU)  ·  "
         "Prompts 0: all of them")
PARAMS = {info.name: info for info in describe(SampleParams)}
ORDER_CHOICES = [("the session's order", "session"),
                 ("least sure first: where the newest reward run can't tell the best two apart", "uncertain"),
                 ("disagreement first: where two reward runs rank the answers most differently", "disagree")]


def order_choices(reward_runs: list[str]) -> tuple[list[tuple[str, str]], str]:
    """(the orders the project's completed reward runs allow, why `disagree` is not among them or '')."""
    if len(reward_runs) >= 2:
        return ORDER_CHOICES, ""
    have = "none" if not reward_runs else f"only {reward_runs[0]}"
    return ([c for c in ORDER_CHOICES if c[1] != "disagree"],
            f"Disagreement first needs two completed reward runs with a model (this project has {have}).")


@dataclass
class SessionRow:
    """One sampling session as the list shows it."""

    id: str
    models: str
    state: str
    sampled: int
    total: int | None
    decided: int

    @property
    def progress(self) -> str:
        return f"{self.decided}/{self.total}" if self.total else f"{self.decided}/?"


def read_sessions(project: str) -> list[SessionRow]:
    """The project's sampling sessions, newest first, with how far the person got in each."""
    rows = []
    for info in reversed(candidates.sessions(project)):
        about = candidates.session_info(info.path) or {}
        models = about.get("models") or []
        label = " vs ".join(models) + " (blind)" if about.get("ab") else ", ".join(models)
        rows.append(SessionRow(id=info.id, models=label or "…", state=info.state,
                               sampled=len(candidates.latest_groups(info.path)),
                               total=candidates.total_prompts(info.path),
                               decided=len(ranking.done_indices(project, info.id, by="person"))))
    return rows


class RankSetupScreen(ModalScreen[None]):
    """Resume a session from the list (enter), or set up a new one and start it (ctrl+s)."""

    CSS_PATH = "sessions.tcss"
    BINDINGS = [
        Binding("ctrl+s", "start", "Start session", id="rank_setup.start"),
        Binding("escape", "close", "Close", id="rank_setup.close"),
    ]

    def __init__(self, project: str) -> None:
        super().__init__()
        self.project = project
        self.starting = False
        info = projects.load(project)
        self.datasets = [d for d in info.datasets if d.kind in PROMPT_KINDS]
        self.models = store.model_choices(project)
        self.reward_runs = scoring.reward_runs(project)

    def compose(self) -> ComposeResult:
        models = [(c.label, c.ref) for c in self.models]
        datasets = [(f"{d.name} ({d.kind}, {d.records})", d.name) for d in self.datasets]
        with Vertical(id="dialog"):
            yield Static(f"Rank outputs of [b]{self.project}[/b]", classes="title")
            with VerticalScroll(id="body"):
                yield Static("Go on with a session", classes="section")
                yield DataTable(id="sessions", cursor_type="row", zebra_stripes=True)
                yield Static("No sampling session yet.", id="no-sessions", classes="empty")
                yield Static("New session", classes="section")
                with Horizontal(classes="row"):
                    yield Label("Model", classes="name")
                    yield Select(models, value="base", allow_blank=False, id="model", compact=True)
                with Horizontal(classes="row"):
                    yield Label("Blind A/B against", classes="name")
                    yield Select([("nobody: rank N answers of the model", "")] + models, value="",
                                 allow_blank=False, id="model-b", compact=True)
                with Horizontal(classes="row"):
                    yield Label("Prompts from", classes="name")
                    yield Select(datasets + [("the prompts typed below", TYPED)],
                                 value=datasets[0][1] if datasets else TYPED, allow_blank=False, id="dataset",
                                 compact=True)
                yield TextArea(id="typed", soft_wrap=True, show_line_numbers=False)
                with Horizontal(classes="row"):
                    yield Label("Order", classes="name")
                    yield Select(order_choices(self.reward_runs)[0], value="session", allow_blank=False, id="order",
                                 compact=True)
                yield Static(id="order-note", markup=False)
                with Horizontal(id="numbers"):
                    for name, label in NUMBERS:
                        with Vertical():
                            yield Label(label)
                            yield Input(str(PARAMS[name].default), id=f"param-{name}", compact=True,
                                        validators=[ParamValidator(PARAMS[name])])
                yield Static(ZEROS, id="zeros", markup=False)
            yield Static(id="status", markup=False)
            yield Static("[b]enter[/b] on a session goes on with it  ·  [b]ctrl+s[/b] starts a new session  ·  "
                         "[b]escape[/b] closes", classes="keys")

    def on_mount(self) -> None:
        table = self.query_one("#sessions", DataTable)
        for label, key in (("Session", "id"), ("Models", "models"), ("Sampler", "state"),
                           ("Sampled", "sampled"), ("Ranked or skipped", "decided")):
            table.add_column(label, key=key)
        table.display = False
        self.show_order_note()
        self.query_one("#typed", TextArea).border_title = (
            "typed prompts, one per line: saved as a new dataset 'prompts…' of the project")
        self.load_sessions()

    @work(thread=True, exclusive=True, exit_on_error=False, name="Reading the sessions")
    def load_sessions(self) -> None:
        rows = read_sessions(self.project)
        self.app.call_from_thread(self.show_sessions, rows)

    def show_sessions(self, rows: list[SessionRow]) -> None:
        if not self.is_attached:
            return
        self.sessions = rows
        table = self.query_one("#sessions", DataTable)
        table.clear()
        for row in rows:
            sampled = f"{row.sampled}/{row.total}" if row.total else str(row.sampled)
            table.add_row(*(Text(printable(cell)) for cell in (row.id, row.models, row.state, sampled, row.progress)),
                          key=row.id)
        table.display = bool(rows)
        self.query_one("#no-sessions").display = not rows
        (table if rows else self.query_one("#model")).focus()

    # resuming ------------------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.open_session(str(event.row_key.value))

    def open_session(self, run_id: str) -> None:
        from screens.rank.screen import RankScreen

        self.app.switch_screen(RankScreen(self.project, run_id))

    # a new session -------------------------------------------------------------------

    @on(TextArea.Changed, "#typed")
    def _typing(self, event: TextArea.Changed) -> None:
        if event.text_area.text.strip():
            self.query_one("#dataset", Select).value = TYPED

    @on(Select.Changed, "#order")
    def show_order_note(self) -> None:
        """Why the disagreement order is not offered, or which two runs it compares."""
        note = order_choices(self.reward_runs)[1]
        if self.query_one("#order", Select).value == "disagree":
            note = "Compares the newest two reward runs: {} and {}.".format(*scoring.disagreeing_runs(
                self.project, runs=self.reward_runs))
        self.query_one("#order-note", Static).update(note)
        self.query_one("#order-note").display = bool(note)

    def read_form(self) -> tuple[dict[str, str], list[str] | None, str]:
        """(params, typed prompts or None for a dataset, a problem to show or '')."""
        values = {"model": str(self.query_one("#model", Select).value),
                  "model_b": str(self.query_one("#model-b", Select).value)}
        if values["model_b"] == values["model"]:
            return values, None, "Blind A/B needs two different models."
        values["order"] = str(self.query_one("#order", Select).value)
        try:  # an ordered session samples many groups ahead; a disagree one records its two reward runs
            values = scoring.session_values(self.project, values)
        except scoring.ScoringError as exc:
            return values, None, str(exc)
        for name, label in NUMBERS:
            raw = self.query_one(f"#param-{name}", Input).value
            try:
                coerce(PARAMS[name], raw)
            except ParamError as exc:
                return values, None, f"{label}: {exc}"
            values[name] = raw
        source = self.query_one("#dataset", Select).value
        if source != TYPED:
            values["dataset"] = str(source)
            return values, None, ""
        typed = [line.strip() for line in self.query_one("#typed", TextArea).text.splitlines() if line.strip()]
        if not typed:
            return values, None, "Type at least one prompt (one per line), or pick a dataset."
        return values, typed, ""

    def action_start(self) -> None:
        if self.starting:
            return
        values, typed, problem = self.read_form()
        if problem:
            self.show_status(problem, error=True)
            return
        self.starting = True
        self.show_status("Starting the sampler…")
        self.start_session(values, typed)

    @work(thread=True, exclusive=True, exit_on_error=False, name="Starting the session")
    def start_session(self, values: dict[str, str], typed: list[str] | None) -> None:
        from workbench.jobs import launch

        try:
            dataset = candidates.save_typed_prompts(self.project, typed) if typed else values.pop("dataset")
            spec = make_spec(self.project, candidates.METHOD, values, datasets=[dataset])
            launch.start(spec, wait_for_start=False)
        except (launch.LaunchError, ParamError, projects.ProjectError, candidates.SessionError, OSError,
                store.RunError) as exc:
            self.app.call_from_thread(self.start_failed, str(exc))
            return
        self.app.call_from_thread(self.open_session, spec.id)

    def start_failed(self, text: str) -> None:
        self.starting = False
        self.show_status(text, error=True)

    def show_status(self, text: str, error: bool = False) -> None:
        if self.is_attached:
            status = self.query_one("#status", Static)
            status.update(Text(printable(text), style="bold red" if error else "italic"))

    def action_close(self) -> None:
        self.dismiss(None)

    def on_worker_state_changed(self, event) -> None:
        if event.worker.is_finished and event.worker.name == "Starting the session" and not self.is_attached:
            self.starting = False
        forward_failure(self, event)
