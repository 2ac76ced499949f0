"""A pipeline run: its stages with their states; enter opens a stage's monitor.

The runner is a process of its own (`workbench.plans.runner`); this screen reads
its files every few seconds, and stop / resume act on it through the engine. The sweep
screen is the same screen with a comparison table (screens/plans/sweep.py).
"""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static
from textual.worker import get_current_worker

from screens.messages import OpenRun, forward_failure
from screens.widgets.fit_table import FitTable
from screens.widgets.footer import KeyFooter
from workbench.plans import pipelines

REFRESH_SECONDS = 1.5
STATE_STYLES = {"pending": "dim", "starting": "cyan", "running": "bold green", "completed": "green",
                "stopped": "yellow", "failed": "bold red", "lost": "magenta", "missing": "magenta",
                "stalled": "bold dark_orange"}


def fmt_loss(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


class PlanScreen(Screen):
    """What a pipeline and a sweep screen share: the summary, a table of runs, stop and resume."""

    CSS_PATH = "pipeline.tcss"
    BINDINGS = [  # most used first: the footer keeps the keys that fit
        Binding("m,enter", "monitor", "Monitor stage", key_display="m/⏎", id="plan.monitor"),
        Binding("s", "stop", "Stop", id="plan.stop"),
        Binding("r", "resume", "Resume", id="plan.resume"),
        Binding("escape", "back", "Back", id="plan.back"),
    ]
    COLUMNS: tuple[tuple[str, str], ...] = ()

    def __init__(self, project: str, plan_id: str) -> None:
        super().__init__()
        self.project, self.plan_id = project, plan_id
        self.info: pipelines.PlanInfo | None = None
        self.run_ids: list[str] = []  # the run of each table row ("" when not started)
        self.busy = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="summary")
        yield FitTable(flexible=("stage", "run"), by_need=True, id="stages", cursor_type="row", zebra_stripes=True)
        yield Static(id="stage-details", markup=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = f"project {self.project}"
        self.add_columns(self.query_one("#stages", DataTable))
        self.load()
        self.set_interval(REFRESH_SECONDS, self.load)

    def add_columns(self, table: DataTable) -> None:
        for label, key in self.COLUMNS:
            table.add_column(label, key=key)

    @work(thread=True, exclusive=True, exit_on_error=False, name="Reading the pipeline")
    def load(self) -> None:
        found = self.read()
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self.show, found)

    def read(self):
        return pipelines.status(self.project, self.plan_id)

    def info_of(self, found) -> pipelines.PlanInfo:
        return found

    def show(self, found) -> None:
        if not self.is_attached:
            return
        self.info = info = self.info_of(found)
        kind = "Sweep" if info.plan.kind == "sweep" else "Pipeline"
        self.title = f"{kind} {info.plan.name}"
        said = f" — {escape(info.message)}" if info.message else ""
        notes = "".join(f"\n{escape(n)}" for n in info.notes)
        self.query_one("#summary", Static).update(
            f"[b]{escape(info.id)}[/b]  ·  {info.plan.kind} [b]{escape(info.plan.name)}[/b]  ·  "
            f"[{STATE_STYLES.get(info.state, '')}]{info.state}[/]{said}  ·  {escape(info.progress())}{notes}")
        table = self.query_one("#stages", DataTable)
        rows = self.rows(found)
        keys = [key for key, _ in rows]
        if keys != self.run_ids:
            row = table.cursor_row
            table.clear()
            for key, cells in rows:
                table.add_row(*cells, key=key)
            self.run_ids = keys
            if 0 <= row < table.row_count:
                table.move_cursor(row=row)
        else:
            for key, cells in rows:
                for (_, column), value in zip(self.COLUMNS, cells):
                    table.update_cell(key, column, value, update_width=True)
        table.fit()  # a long stage shares what the other columns leave
        if self.focused is None:
            table.focus()
        self.show_details()
        self.refresh_bindings()

    def rows(self, found) -> list[tuple[str, list]]:
        """(row key, cells) per row; the key is the row's run id, or `stage-N` before it has one."""
        raise NotImplementedError

    def selected(self) -> pipelines.StageInfo | None:
        table = self.query_one("#stages", DataTable)
        if self.info is None or not self.run_ids or not 0 <= table.cursor_row < len(self.run_ids):
            return None
        key = self.run_ids[table.cursor_row]
        return next((s for s in self.info.stages if (s.run_id or f"stage-{s.index}") == key), None)

    def show_details(self) -> None:
        stage = self.selected()
        text = ""
        if stage is not None:
            text = f"{stage.index + 1}. {stage.stage.to_text()}: {stage.state}"
            if stage.message and stage.message != stage.state:
                text += f" — {stage.message}"
            if stage.run_id:  # whole here, where the table may have to cut it
                text += f"  (run {stage.run_id})"
        self.query_one("#stage-details", Static).update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_details()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_monitor()

    # actions -------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return True if self.info is not None and self.info.alive and not self.busy else None
        if action == "resume":
            return True if self.info is not None and self.info.resumable and not self.busy else None
        return True

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_monitor(self) -> None:
        stage = self.selected()
        if stage is None or not stage.run_id:
            self.notify("This stage has not started yet: it has no run to monitor.", severity="warning")
            return
        self.post_message(OpenRun(self.project, stage.run_id))

    def action_stop(self) -> None:
        self.act("stop")

    def action_resume(self) -> None:
        self.act("resume")

    @work(thread=True, exit_on_error=False, name="Stopping or resuming")
    def act(self, verb: str) -> None:
        from workbench.plans import runner as pipeline_runner

        self.busy = True
        self.app.call_from_thread(self.refresh_bindings)
        try:
            if verb == "stop":
                pipeline_runner.stop(self.project, self.plan_id)
                said = f"Stopping {self.plan_id}: its running stages save a checkpoint."
            else:
                pipeline_runner.resume(self.project, self.plan_id)
                said = f"Resumed {self.plan_id} from its first stage not completed."
        except (pipelines.PipelineError, RuntimeError) as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="warning", markup=False)
        else:
            self.app.call_from_thread(self.notify, said, markup=False)
        finally:
            self.busy = False
            self.app.call_from_thread(self.load)

    def on_worker_state_changed(self, event) -> None:
        forward_failure(self, event)


class PipelineScreen(PlanScreen):
    COLUMNS = (("#", "n"), ("Stage", "stage"), ("From", "base"), ("Run", "run"), ("State", "state"),
               ("Step", "step"), ("Loss", "loss"), ("Eval loss", "eval"))

    def rows(self, found: pipelines.PlanInfo) -> list[tuple[str, list]]:
        out = []
        for s in found.stages:
            run = s.run
            step = "–" if run is None else f"{run.step}/{run.total_steps}" if run.total_steps else str(run.step)
            cells = [str(s.index + 1), s.stage.to_text(), s.stage.base_for(s.index), s.run_id or "–",
                     state_text(s.state), step, fmt_loss(run.last_loss if run else None),
                     fmt_loss(run.last_eval_loss if run else None)]
            out.append((s.run_id or f"stage-{s.index}", cells))
        return out
