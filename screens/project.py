"""One project: its datasets and its runs, refreshed while runs train."""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static
from textual.worker import get_current_worker

from screens.messages import ExportRun, OpenData, OpenRun, forward_failure
from screens.widgets.fit_table import FitTable
from screens.widgets.footer import KeyFooter
from workbench import models, registry
from workbench import project as projects
from workbench.evaluate import job as eval_job
from workbench.jobs import store
from workbench.plans import pipelines
from workbench.registry.stopping import on_stop
from workbench.run.spec import JobSpec

REFRESH_SECONDS = 1.5
STATE_STYLES = {"starting": "cyan", "running": "bold green", "stalled": "bold dark_orange", "completed": "green",
                "stopped": "yellow", "failed": "bold red", "lost": "magenta"}


def state_text(item: store.RunInfo | pipelines.PlanInfo) -> Text:
    """The state word, with the seconds since the last heartbeat for a stalled worker."""
    word = f"stalled {item.stalled_for:.0f} s" if item.state == "stalled" else item.state
    return Text(word, style=STATE_STYLES.get(item.state, ""))


def fmt_loss(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def fmt_steps(run: store.RunInfo) -> str:
    return f"{run.step}/{run.total_steps}" if run.total_steps else str(run.step)


def row_key(item: store.RunInfo | pipelines.PlanInfo) -> str:
    return f"plan:{item.id}" if isinstance(item, pipelines.PlanInfo) else item.id


def run_cells(run: store.RunInfo, depth: int) -> dict:
    return {"id": ("  └ " if depth else "") + run.id, "method": run.method,
            "state": state_text(run),
            "step": fmt_steps(run), "loss": fmt_loss(run.last_loss), "eval": fmt_loss(run.last_eval_loss)}


def plan_cells(plan: pipelines.PlanInfo) -> dict:
    """A pipeline: its current stage's figures; a sweep: its best final eval loss."""
    runs = [s.run for s in plan.stages if s.run is not None]
    current = plan.current.run if plan.current else None
    evals = [r.last_eval_loss for r in runs if r.last_eval_loss is not None]
    return {"id": Text(f"▾ {plan.plan.name}", style="bold"), "method": plan.plan.kind,
            "state": state_text(plan), "step": plan.progress(),
            "loss": fmt_loss(current.last_loss if current else None),
            "eval": fmt_loss(min(evals) if plan.plan.kind == "sweep" and evals else
                             current.last_eval_loss if current else None)}


class ProjectScreen(Screen):
    """Datasets on top, runs below; the keys act on the highlighted run."""

    CSS_PATH = "styles/project.tcss"
    AUTO_FOCUS = ""  # show() focuses the runs once they are read, else the datasets
    # Most used first: the footer keeps the keys that fit, `?` lists them all.
    BINDINGS = [
        Binding("t", "train", "Train", id="project.train"),
        Binding("m,enter", "monitor", "Monitor", key_display="m/⏎", id="project.monitor"),
        Binding("d", "data", "Data", id="project.data"),
        Binding("i", "import_data", "Import", tooltip="Import a data file", id="project.import"),
        Binding("k", "rank", "Rank", tooltip="Rank sampled outputs", id="project.rank"),
        Binding("e", "export", "Export", id="project.export"),
        Binding("p", "playground", "Playground", tooltip="Talk to the base, a run or a GGUF, side by side",
                id="project.playground"),
        Binding("a", "evaluate", "Evaluate…", tooltip="Score the selected run (or the base alone) on the eval split, "
                "with the base and a few-shot baseline", id="project.evaluate"),
        Binding("o", "report", "Report", tooltip="The selected run's report: metrics vs the base, curves, examples",
                id="project.report"),
        Binding("c", "compare", "Compare runs", tooltip="Every run's method, parameters and metrics, sortable",
                id="project.compare"),
        Binding("s", "stop", "Stop", tooltip="Stop the selected run (training saves a checkpoint first)",
                id="project.stop"),
        Binding("r", "resume", "Resume", tooltip="Resume the selected run from its last checkpoint",
                id="project.resume"),
        Binding("escape", "back", "Back", id="project.back"),
    ]

    def __init__(self, project: str) -> None:
        super().__init__()
        self.project = project
        self.runs: list[store.RunInfo | pipelines.PlanInfo] = []  # one per row of the runs table
        self.info: projects.Project | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="summary")
        yield Static("Datasets", classes="section")
        yield FitTable(flexible=("name",), id="datasets", cursor_type="row", zebra_stripes=True)
        yield Static("No data yet: press [b]i[/b] to import a JSONL file.", id="no-datasets", classes="empty")
        yield Static("Runs", classes="section")
        yield FitTable(flexible=("step",), id="runs", cursor_type="row", zebra_stripes=True)
        yield Static("No runs yet: press [b]t[/b] to pick a method and start training, "
                     "or [b]k[/b] to rank sampled outputs.", id="no-runs", classes="empty")
        yield Static(id="run-details", markup=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = self.project
        datasets = self.query_one("#datasets", DataTable)
        for label, key in (("Name", "name"), ("Kind", "kind"), ("Records", "records"), ("Split", "split"),
                           ("Imported", "imported")):
            datasets.add_column(label, key=key)
        runs = self.query_one("#runs", DataTable)
        for label, key in (("Run", "id"), ("Method", "method"), ("State", "state"), ("Step", "step"),
                           ("Loss", "loss"), ("Eval loss", "eval")):
            runs.add_column(label, key=key)
        self.timer = self.set_interval(REFRESH_SECONDS, self.load, pause=True)

    def on_screen_resume(self) -> None:
        self.load()
        self.timer.resume()

    def on_screen_suspend(self) -> None:
        self.timer.pause()

    @work(thread=True, exclusive=True, exit_on_error=False, name="Reading the project")
    def load(self) -> None:
        info = projects.load(self.project)
        runs = store.list_runs(self.project)
        rows = pipelines.group_runs(runs, pipelines.list_plan_runs(self.project, {r.id: r for r in runs}))
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self.show, info, rows)

    def show(self, info: projects.Project, runs: list[tuple[int, store.RunInfo | pipelines.PlanInfo]]) -> None:
        if not self.is_attached:
            return
        first = self.info is None
        if first or info.datasets != self.info.datasets:
            self.show_datasets(info)
        self.info = info
        self.show_runs(runs)
        if self.focused is None and (runs or info.datasets):
            self.query_one("#runs" if runs else "#datasets", DataTable).focus()

    def show_datasets(self, info: projects.Project) -> None:
        self.query_one("#summary", Static).update(
            f"[b]{info.name}[/b]  ·  base model {escape(models.describe(info.base_model))}  ·  "
            f"{escape(str(info.path))}")
        table = self.query_one("#datasets", DataTable)
        table.clear()
        for d in info.datasets:
            table.add_row(d.name, d.kind, str(d.records), d.split, d.imported[:16].replace("T", " "), key=d.name)
        table.display = bool(info.datasets)
        table.fit()
        self.query_one("#no-datasets").display = not info.datasets

    def show_runs(self, rows: list[tuple[int, store.RunInfo | pipelines.PlanInfo]]) -> None:
        """Newest first; a pipeline or a sweep is one row, its runs indented under it."""
        table = self.query_one("#runs", FitTable)
        current = self.selected_row()
        keys = [row_key(item) for _, item in rows]
        same = keys == [row_key(item) for item in self.runs]
        self.runs = [item for _, item in rows]
        if not same:
            table.clear()
        for (depth, item), key in zip(rows, keys):
            cells = plan_cells(item) if isinstance(item, pipelines.PlanInfo) else run_cells(item, depth)
            if same:
                for column, value in cells.items():
                    table.update_cell(key, column, value, update_width=True)
            else:
                table.add_row(*cells.values(), key=key)
        if not same and current is not None and row_key(current) in keys:
            table.move_cursor(row=keys.index(row_key(current)))
        table.display = bool(rows)
        table.fit()  # a pipeline's long progress shares what the other columns leave
        self.query_one("#no-runs").display = not rows
        self.show_run_details()

    def selected_row(self) -> store.RunInfo | pipelines.PlanInfo | None:
        table = self.query_one("#runs", DataTable)
        if not self.runs or table.row_count == 0:
            return None
        index = table.cursor_row
        return self.runs[index] if 0 <= index < len(self.runs) else None

    def selected_run(self) -> store.RunInfo | None:
        row = self.selected_row()
        return row if isinstance(row, store.RunInfo) else None

    def selected_plan(self) -> pipelines.PlanInfo | None:
        row = self.selected_row()
        return row if isinstance(row, pipelines.PlanInfo) else None

    def show_run_details(self) -> None:
        run = self.selected_run()
        text = ""
        if plan := self.selected_plan():
            said = f" — {plan.message}" if plan.message else ""
            text = f"{plan.plan.kind} {plan.plan.name} ({plan.id}): {plan.state}{said}  (enter opens it)"
        if run:
            said = run.message if run.message.startswith(run.state) else f"{run.state} — {run.message}"
            text = f"{run.id}: {said if run.message else run.state}"
            if run.resumable:
                text += "  (press r to resume)"
            elif run.state == "stalled":
                text += "  (press s to stop it)"
        self.query_one("#run-details", Static).update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "runs":
            self.show_run_details()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "runs":  # enter on a run opens its monitor
            self.action_monitor()

    def require_run(self) -> store.RunInfo | None:
        run = self.selected_run()
        if run is None:
            self.notify("No run selected: press t to start one.", severity="warning")
        return run

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_import_data(self) -> None:
        from screens.data.importer import ImportScreen

        self.app.push_screen(ImportScreen(self.project), lambda _: self.load())

    def action_data(self) -> None:
        table = self.query_one("#datasets", DataTable)
        dataset = None
        if self.info and self.info.datasets and 0 <= table.cursor_row < len(self.info.datasets):
            dataset = self.info.datasets[table.cursor_row].name
        self.post_message(OpenData(self.project, dataset))

    def action_train(self) -> None:
        from screens.method import MethodScreen

        self.app.push_screen(MethodScreen(self.project))

    def action_rank(self) -> None:
        from screens.rank.sessions import RankSetupScreen

        self.app.push_screen(RankSetupScreen(self.project))

    def action_monitor(self) -> None:
        if plan := self.selected_plan():
            from screens.plans.pipeline import PipelineScreen
            from screens.plans.sweep import SweepScreen

            screen = SweepScreen if plan.plan.kind == "sweep" else PipelineScreen
            self.app.push_screen(screen(self.project, plan.id))
        elif run := self.require_run():
            self.post_message(OpenRun(self.project, run.id))

    def action_playground(self) -> None:
        """The base on the left; on the right the highlighted run (or the run an evaluation job scored) when
        it has weights to talk to."""
        from screens.playground import PlaygroundScreen

        run_id = self.evaluated_run()
        if run_id:
            try:
                store.trained_weights(self.project, run_id)
            except store.RunError:  # still running, or nothing saved yet
                run_id = ""
        self.app.push_screen(PlaygroundScreen(self.project, models=("base", f"run:{run_id}" if run_id else "")))

    def evaluated_run(self) -> str:
        """The training run the selected row is, or evaluates; "" for the base model alone."""
        run = self.selected_run()
        if run is None:
            return ""
        if run.method == eval_job.METHOD:
            try:
                return str(JobSpec.load(run.path).params.get("run", ""))
            except (OSError, KeyError, ValueError):
                return ""
        return run.id if registry.trains(run.method) else ""

    def action_evaluate(self) -> None:
        from screens.evaluate import EvaluateScreen

        run_id = self.evaluated_run()

        def started(folder) -> None:
            self.load()
            if folder is not None and run_id:
                self.open_report(run_id)
            elif folder is not None:
                self.post_message(OpenRun(self.project, folder.name))

        self.app.push_screen(EvaluateScreen(self.project, run_id), started)

    def action_report(self) -> None:
        if run_id := self.evaluated_run():
            self.open_report(run_id)
        else:
            self.notify("No training run selected: its report compares it with the base.", severity="warning")

    def open_report(self, run_id: str) -> None:
        from screens.report import ReportScreen

        self.app.push_screen(ReportScreen(self.project, run_id))

    def action_compare(self) -> None:
        from screens.compare import CompareScreen

        self.app.push_screen(CompareScreen(self.project))

    def action_export(self) -> None:
        from workbench.export import ExportError
        from workbench.export.job import refuse_untrained

        if run := self.require_run():
            try:
                refuse_untrained(self.project, run.id)  # an evaluation job, a sampling session...
            except ExportError as exc:
                self.notify(str(exc), severity="warning", markup=False)
                return
            self.post_message(ExportRun(self.project, run.id))

    def action_stop(self) -> None:
        if plan := self.selected_plan():
            self.act_on_plan("stop", plan.id)
        elif run := self.require_run():
            self.stop_run(run.id, run.method)

    def action_resume(self) -> None:
        if plan := self.selected_plan():
            self.act_on_plan("resume", plan.id)
        elif run := self.require_run():
            self.resume_run(run.id)

    @work(thread=True, exit_on_error=False, name="Stopping or resuming")
    def act_on_plan(self, verb: str, plan_id: str) -> None:
        from workbench.plans import runner as pipeline_runner

        try:
            if verb == "stop":
                pipeline_runner.stop(self.project, plan_id)
            else:
                pipeline_runner.resume(self.project, plan_id, wait_for_start=False)
        except (pipelines.PipelineError, RuntimeError) as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="warning", markup=False)
            return
        said = "its running stages save a checkpoint" if verb == "stop" else "from its first stage not completed"
        self.app.call_from_thread(self.notify, f"{verb.capitalize()} {plan_id}: {said}.")
        self.app.call_from_thread(self.load)

    @work(thread=True, exit_on_error=False, name="Stopping the run")
    def stop_run(self, run_id: str, method: str) -> None:
        try:
            store.stop(self.project, run_id)
        except store.RunError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="warning", markup=False)
            return
        self.app.call_from_thread(self.notify, f"Stopping {run_id}: {on_stop(method)}.")
        self.app.call_from_thread(self.load)

    @work(thread=True, exit_on_error=False, name="Resuming the run")
    def resume_run(self, run_id: str) -> None:
        from workbench.jobs import launch

        try:
            launch.resume(self.project, run_id, wait_for_start=False)
        except (launch.LaunchError, store.RunError) as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="warning", markup=False)
            return
        self.app.call_from_thread(self.notify, f"Resuming {run_id} from its last checkpoint.")
        self.app.call_from_thread(self.load)

    def on_worker_state_changed(self, event) -> None:
        forward_failure(self, event)
