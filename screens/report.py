"""A run's report: did it get better? Its final metrics next to the base model's and the few-shot
baseline's, its curves, and the held-out prompts answered by the base and by the run side by side.

Everything shown is read from files the engine wrote (`workbench.evaluate.report` chooses the subjects
and pairs the generations, `results` formats the figures); nothing is computed again here. An
evaluation of the run can be started (`a`), is followed while it runs (its progress line; the results
appear when it ends) and can be stopped (`s`). `w` writes the same report as Markdown. A run also evaluated
on other datasets (`eval --dataset`, or "Evaluate on" in the modal) has a view of each: `d` sets the
metrics and the examples on the next one (the eval split's first), as the Markdown has a section of each.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static
from textual.worker import get_current_worker

from screens.messages import forward_failure
from screens.run_charts import LOSS, catalogue
from screens.run_metrics import RunMetrics
from screens.widgets.footer import KeyFooter
from screens.widgets.metric_chart import MetricChart
from workbench.evaluate import job as eval_job
from workbench.evaluate import report, results
from workbench.jobs import store
from workbench.terminal import printable

REFRESH_SECONDS = 2.0
NARROW = 110  # columns under which the curves take the metrics' place (v switches)
BETTER, WORSE = "bold green", "red"
EXAMPLE_KEYS = Binding.Group("example")


@dataclass
class View:
    """The figures on one set of records: the eval split (`on` empty) or the datasets `on`."""

    on: str
    columns: list[tuple[str, dict[str, Any] | None]]  # (subject, its results): base, few-shot, the run
    pairs: list[tuple[dict[str, Any], dict[str, Any]]]  # (the run's generation, the base's) per prompt

    @property
    def where(self) -> str:
        return f"on {self.on}" if self.on else "eval split"


@dataclass
class ReportData:
    """What the screen shows, read in a thread."""

    info: store.RunInfo
    views: list[View]  # the eval split's, then one per other dataset the run was evaluated on
    evaluation: store.RunInfo | None  # an evaluation of the run that is running


def read(project: str, run_id: str) -> ReportData:
    info = store.get(project, run_id)
    views = []
    for on in ["", *report.datasets(project, run_id)]:
        columns = [(replace(s, on="").name, results.read(project, s)) for s in report.subjects(project, run_id, on)]
        views.append(View(on, columns, report.example_pairs(project, run_id, None, on)))
    return ReportData(info, views, evaluation(project, run_id))


def evaluation(project: str, run_id: str) -> store.RunInfo | None:
    folder = eval_job.running(project, run_id)
    return store.get(project, folder.name) if folder else None


def metric_rows(columns: list[tuple[str, dict[str, Any] | None]]) -> list[list[Text]]:
    """`results.table`'s rows, the run's figure green where it beats the base's and red where it is worse."""
    rows = results.table(columns)
    flats = [results.flat(r) for _, r in columns]
    names = results.order(list(dict.fromkeys(k for f in flats for k in f)))
    out = [[Text(printable(cell)) for cell in rows[0]]]
    for name, row in zip(names, rows[1:]):
        cells = [Text(printable(cell)) for cell in row]
        base, tuned = flats[0].get(name), flats[-1].get(name)
        if len(columns) > 1 and columns[-1][1] and base is not None and tuned is not None and base != tuned \
                and name not in ("records", "seconds"):
            better = (tuned < base) if name in results.LOWER_IS_BETTER else (tuned > base)
            cells[-1].stylize(BETTER if better else WORSE)
        out.append(cells)
    return out


def progress(info: store.RunInfo) -> str:
    """`Evaluating (20261201-…-eval): 48/120 answers · base+3-shot: scoring`."""
    done = f"{info.step}/{info.total_steps} answers" if info.total_steps else "starting"
    said = f" · {info.message}" if info.message and info.message != info.state else ""
    return f"Evaluating ({info.id}): {done}{said}"


def answer_text(generation: dict[str, Any]) -> Text:
    answer = generation.get("answer")
    if answer is None:
        return Text("(not evaluated)", style="italic dim")
    text = Text(printable(str(answer)) or "(empty answer)")
    scores = generation.get("scores") or {}
    marks = []
    if "exact_match" in scores:
        marks.append("exact" if scores["exact_match"] else "not exact")
    if isinstance(scores.get("fields"), dict):
        right = sum(bool(v) for v in scores["fields"].values())
        marks.append(f"fields {right}/{len(scores['fields'])}")
    for name, value in (scores.get("rewards") or {}).items():
        marks.append(f"{name} {value if value is None else f'{value:.2f}'}")
    if generation.get("cut"):
        marks.append(f"cut at {generation['cut']} tokens")
    if marks:
        text.append("\n" + " · ".join(marks), style="dim")
    return text


class ReportScreen(Screen):
    CSS_PATH = "styles/report.tcss"
    AUTO_FOCUS = "#metrics"
    # Most used first: the footer keeps the keys that fit, `?` lists them all.
    BINDINGS = [
        Binding("a", "evaluate", "Evaluate…", tooltip="Score the run, the base and a few-shot baseline on the "
                "eval split or other datasets", id="report.evaluate"),
        Binding("s", "stop", "Stop evaluation", id="report.stop"),
        Binding("d", "dataset", "Next dataset", tooltip="The metrics and examples on the next dataset the run was "
                "evaluated on", id="report.dataset"),
        Binding("[", "example(-1)", "Previous example", group=EXAMPLE_KEYS, id="report.example_previous"),
        Binding("]", "example(1)", "Next example", group=EXAMPLE_KEYS, id="report.example_next"),
        Binding("v", "view('curves')", "Curves", tooltip="The curves in the metrics' place", id="report.curves"),
        Binding("v", "view('metrics')", "Metrics", tooltip="The metrics in the curves' place", id="report.metrics"),
        Binding("w", "write", "Write .md", tooltip="Write this report as Markdown in the run's folder",
                id="report.write"),
        Binding("p", "playground", "Playground", tooltip="Talk to this run and the base side by side",
                id="report.playground"),
        Binding("escape", "back", "Back", id="report.back"),
    ]

    def __init__(self, project: str, run_id: str) -> None:
        super().__init__()
        self.project, self.run_id = project, run_id
        self.data: ReportData | None = None
        self.example = 0
        self.view = 0  # the index of the view shown (ReportData.views)
        self.curves = False  # on a narrow terminal: the curves shown instead of the metrics
        self.written: Path | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="status")
        with Horizontal(id="top"):
            yield DataTable(id="metrics", cursor_type="row", zebra_stripes=True, show_cursor=False)
            with Vertical(id="curves"):
                yield MetricChart(id="loss")
                yield MetricChart(id="reward")
        with Vertical(id="examples"):
            yield Static(id="prompt")
            with Horizontal(id="answers"):
                with VerticalScroll(id="base-side", classes="answer"):
                    yield Static(id="base-answer")
                with VerticalScroll(id="tuned-side", classes="answer"):
                    yield Static(id="tuned-answer")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.title = f"Report {self.run_id}"
        self.sub_title = f"project {self.project}"
        self.query_one("#metrics").border_title = "final metrics"
        self.query_one("#curves").border_title = "curves"
        self.query_one("#base-side").border_title = "base"
        self.query_one("#tuned-side").border_title = "tuned"
        self.query_one("#reward").display = False
        self.load()
        self.set_interval(REFRESH_SECONDS, self.poll)

    def on_resize(self) -> None:
        narrow = self.size.width < NARROW
        self.set_class(narrow, "-narrow")
        self.set_class(narrow and self.curves, "-curves")
        self.refresh_bindings()

    # reading -------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="report.read", exit_on_error=False, name="Reading the report")
    def load(self) -> None:
        data = read(self.project, self.run_id)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self.show, data)

    @work(thread=True, exclusive=True, group="report.poll", exit_on_error=False, name="Following the evaluation")
    def poll(self) -> None:
        """While an evaluation runs: its progress; once it ended, the new results."""
        if self.data is None:
            return
        now = evaluation(self.project, self.run_id)
        was = self.data.evaluation
        if now is None and was is not None:
            self.load()
        elif now is not None:
            self.app.call_from_thread(self.show_evaluation, now)

    @property
    def shown(self) -> View | None:
        return self.data.views[self.view] if self.data else None

    def show(self, data: ReportData) -> None:
        if not self.is_attached:
            return
        self.data = data
        self.view = min(self.view, len(data.views) - 1)
        self.show_metrics(data)
        self.show_curves(data)
        self.show_example()
        self.show_evaluation(data.evaluation)

    def show_evaluation(self, info: store.RunInfo | None) -> None:
        if self.data is None:
            return
        keys = (self.data.evaluation is None, info is None)
        self.data.evaluation = info
        status = self.query_one("#status", Static)
        if info is not None:
            status.update(Text(printable(progress(info)), style="bold"))
        elif self.shown.columns[-1][1] is None:
            status.update(Text.assemble("Not evaluated yet: press ", ("a", "bold"), " to score it against the base "
                                        "and a few-shot baseline.", (" d: its results on other datasets."
                                                                     if len(self.data.views) > 1 else "")))
        status.display = info is not None or self.shown.columns[-1][1] is None  # else the table says it all
        if keys[0] != keys[1]:
            self.refresh_bindings()

    def taken(self) -> str:
        """On what the figures were taken, and when the run's were."""
        found = [r for _, r in self.shown.columns if r] if self.shown else []
        datasets = ", ".join(found[-1]["eval"].get("datasets", [])) if found else ""
        run = self.shown.columns[-1][1] if self.shown else None
        when = str(run["eval"].get("created", ""))[:10] if run else ""
        return " · ".join(part for part in (datasets, when) if part)

    def show_metrics(self, data: ReportData) -> None:
        table = self.query_one("#metrics", DataTable)
        table.clear(columns=True)
        view = data.views[self.view]
        table.border_title = "final metrics" + (f" · {view.where} ({self.view + 1}/{len(data.views)}, d: next)"
                                                if len(data.views) > 1 else "")
        rows = metric_rows(view.columns)
        rows[0][-1] = Text("tuned")  # the run's id is the screen's title
        table.border_subtitle = printable(self.taken())
        for cell in rows[0]:
            table.add_column(cell)
        for row in rows[1:]:
            table.add_row(*row)
        if len(rows) == 1:
            table.add_row(Text("no results yet", style="italic dim"), *[Text("-")] * (len(rows[0]) - 1))

    def show_curves(self, data: ReportData) -> None:
        metrics = RunMetrics()
        metrics.add(data.info.events)
        loss, reward = self.query_one("#loss", MetricChart), self.query_one("#reward", MetricChart)
        loss.show(metrics, LOSS)
        loss.border_title = "loss · eval loss (dots)" if metrics.has("eval/loss") else "loss"
        chart = next((c for c in catalogue(data.info.method) if c.name == "reward"), None)
        reward.display = bool(chart and chart.drawn(metrics))
        if chart and reward.display:
            reward.show(metrics, chart)
            reward.border_title = "reward" + (f" · {chart.note}" if chart.note else "")

    def show_example(self) -> None:
        pairs = self.shown.pairs if self.shown else []
        examples = self.query_one("#examples")
        prompt = self.query_one("#prompt", Static)
        self.set_class(not pairs, "-no-examples")
        if not pairs:
            examples.border_title = "example generations"
            prompt.update(Text("None yet: the run's answers to the held-out prompts come with its evaluation.",
                               style="italic"))
            self.query_one("#answers").display = False
            return
        self.example %= len(pairs)
        tuned, base = pairs[self.example]
        examples.border_title = f"example {self.example + 1}/{len(pairs)}" + (f" · {self.shown.where}"
                                                                              if len(self.data.views) > 1 else "")
        examples.border_subtitle = "[ ] more" if len(pairs) > 1 else ""
        text = Text.assemble(("prompt  ", "bold"), printable(str(tuned.get("prompt", ""))))
        if tuned.get("reference") is not None:
            text.append("\n")
            text.append_text(Text.assemble(("expect  ", "bold"), printable(str(tuned["reference"]))))
        prompt.update(text)
        self.query_one("#answers").display = True
        self.query_one("#base-answer", Static).update(answer_text(base))
        self.query_one("#tuned-answer", Static).update(answer_text(tuned))
        for side in ("#base-side", "#tuned-side"):
            self.query_one(side, VerticalScroll).scroll_home(animate=False)

    # actions -------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        running = bool(self.data and self.data.evaluation)
        if action == "example":
            return bool(self.shown and len(self.shown.pairs) > 1)
        if action == "dataset":
            return bool(self.data and len(self.data.views) > 1)
        if action == "evaluate":
            return not running
        if action == "stop":
            return running
        if action == "view":
            return self.size.width < NARROW and parameters[0] != ("curves" if self.curves else "metrics")
        return True

    def action_example(self, delta: int) -> None:
        self.example += delta
        self.show_example()

    def action_dataset(self) -> None:
        if self.data and len(self.data.views) > 1:
            self.view = (self.view + 1) % len(self.data.views)
            self.example = 0
            self.show_metrics(self.data)
            self.show_example()
            self.show_evaluation(self.data.evaluation)
            self.refresh_bindings()

    def action_view(self, view: str) -> None:
        self.curves = view == "curves"
        self.set_class(self.curves and self.size.width < NARROW, "-curves")
        self.refresh_bindings()

    def action_evaluate(self) -> None:
        from screens.evaluate import EvaluateScreen

        def started(folder: Path | None) -> None:
            if folder is not None:
                self.load()

        self.app.push_screen(EvaluateScreen(self.project, self.run_id), started)

    def action_stop(self) -> None:
        if self.data and self.data.evaluation:
            self.stop_evaluation(self.data.evaluation.id)

    @work(thread=True, exit_on_error=False, name="Stopping the evaluation")
    def stop_evaluation(self, job_id: str) -> None:
        try:
            store.stop(self.project, job_id)
        except store.RunError as exc:
            self.app.call_from_thread(self.notify, printable(str(exc)), severity="warning", markup=False)
            return
        self.app.call_from_thread(self.notify, f"Stopping {job_id}: the subjects it finished keep their results.")

    def action_write(self) -> None:
        self.write_report()

    @work(thread=True, exit_on_error=False, name="Writing the report")
    def write_report(self) -> None:
        try:
            path = report.write(self.project, self.run_id)
        except (store.RunError, OSError) as exc:
            self.app.call_from_thread(self.notify, printable(str(exc)), severity="warning", markup=False)
            return
        self.written = path
        self.app.call_from_thread(self.notify, f"Report written to {printable(str(path))}", title="Markdown",
                                  timeout=8, markup=False)

    def action_playground(self) -> None:
        from screens.playground import PlaygroundScreen

        self.app.push_screen(PlaygroundScreen(self.project, models=("base", f"run:{self.run_id}")))

    def action_back(self) -> None:
        self.app.pop_screen()

    def on_worker_state_changed(self, event) -> None:
        forward_failure(self, event)
