"""Watch a run: its metric charts or its samples, figures, machine load and the run's event log.

The run is a folder written by a worker process. A thread tails its `events.jsonl`
from the start (so reattaching shows the whole history) and polls the run's state;
both reach the screen as messages. Stop and resume act on the worker through
`workbench.jobs`, never by touching the process directly.

The charts are the method's (`run_charts`): `[` and `]` step through them, `m` charts any
metric that came. `v` shows the samples instead: the outputs the worker wrote, a step a page
(`[` `]`), the worst or best of a step (`w`, `b`), the full text (`x`).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from functools import partial

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Header, RichLog, Static
from textual.worker import Worker, WorkerState, get_current_worker

from screens.messages import ExportRun
from screens.metric_picker import MetricPicker
from screens.run_charts import Chart, charts_for, reward_weights, single
from screens.run_history import Note, RunHistory
from screens.run_metrics import RunMetrics
from screens.run_samples import RunSamples
from screens.widgets.footer import KeyFooter
from screens.widgets.gpu_panel import GpuPanel
from screens.widgets.metric_chart import MetricChart
from screens.widgets.run_stats import RunStats
from screens.widgets.samples_panel import SamplesPanel
from workbench import locations, registry
from workbench.evaluate.job import METHOD as EVAL_METHOD
from workbench.jobs import launch, store
from workbench.jobs.peak_report import peak_figures
from workbench.run import events as ev
from workbench.run import layout
from workbench.registry.stopping import on_stop
from workbench.run.spec import JobSpec
from workbench.serve.catalog import LM_METHODS
from workbench.terminal import printable

TAIL_SECONDS = 0.3
INFO_SECONDS = 1.5
RESUME_PATIENCE_SECONDS = 120.0
NOTE_STYLES = {"error": "bold red", "warning": "bold yellow", "checkpoint": "green", "finished": "bold",
               "started": "cyan"}
CHART_KEYS = Binding.Group("chart")
STEP_KEYS = Binding.Group("step")
PICK_KEYS = Binding.Group("worst/best")
NARROW = 110  # columns under which the samples take the figures' place
SHORT = 30  # rows under which the samples take the event log's place



class MonitorScreen(Screen):
    CSS_PATH = "styles/monitor.tcss"
    # Most used first: the footer is cut at the right on a narrow terminal. A key may do one thing on
    # the charts and another on the samples; check_action hides whichever does not apply.
    BINDINGS = [
        Binding("[", "chart(-1)", "Previous chart", group=CHART_KEYS, id="monitor.chart_previous"),
        Binding("]", "chart(1)", "Next chart", group=CHART_KEYS, id="monitor.chart_next"),
        Binding("[", "page(-1)", "Previous step", group=STEP_KEYS, id="monitor.step_previous"),
        Binding("]", "page(1)", "Next step", group=STEP_KEYS, id="monitor.step_next"),
        Binding("m", "pick_metric", "Metric…", id="monitor.metric"),
        Binding("w", "filter('worst')", "Worst of the step", group=PICK_KEYS, id="monitor.worst"),
        Binding("b", "filter('best')", "Best of the step", group=PICK_KEYS, id="monitor.best"),
        Binding("x", "full_text", "Full text", id="monitor.full_text"),
        Binding("v", "view('samples')", "Samples", id="monitor.samples"),
        Binding("v", "view('chart')", "Charts", id="monitor.charts"),
        # No description: the palette names each chart instead ("Chart: reward"), with its number.
        *(Binding(str(n), f"chart_number({n})", "", show=False, id=f"monitor.chart_{n}") for n in range(1, 10)),
        Binding("s", "stop", "Stop", tooltip="Stop the run (training saves a checkpoint first)", id="monitor.stop"),
        Binding("r", "resume", "Resume", id="monitor.resume"),
        Binding("e", "export", "Export", id="monitor.export"),
        # Off the footer (it has no room at 80 columns): in the palette and the keys panel (?).
        Binding("p", "playground", "Playground", show=False, id="monitor.playground",
                tooltip="Talk to this run's model and the base side by side"),
        Binding("o", "report", "Report", show=False, id="monitor.report",
                tooltip="Metrics vs the base and the few-shot baseline, curves, examples"),
        Binding("a", "evaluate", "Evaluate…", show=False, id="monitor.evaluate",
                tooltip="Score this run, the base and a few-shot baseline on the eval split"),
        Binding("escape", "back", "Back", id="monitor.back"),
    ]

    class EventsRead(Message):
        """New events from the file, in order (never dropped), and how many lines of it were
        skipped so far as unreadable (cut by a kill, or not an event)."""

        def __init__(self, events: list[ev.Event], skipped: int = 0) -> None:
            super().__init__()
            self.events, self.skipped = events, skipped

    class InfoRead(Message):
        """The run's state as the store sees it; a newer one replaces a queued one."""

        def __init__(self, info: store.RunInfo | None, resumable: bool, error: str = "") -> None:
            super().__init__()
            self.info, self.resumable, self.error = info, resumable, error

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, MonitorScreen.InfoRead)

    class SpecRead(Message):
        """What the run's job.toml says about its charts (the method and its rewards' weights) and the
        memory estimate it was started with."""

        def __init__(self, method: str, weights: dict[str, float], evaluated: str = "",
                     estimate: dict | None = None) -> None:
            super().__init__()
            self.method, self.weights, self.evaluated = method, weights, evaluated
            self.estimate = estimate or {}

    def __init__(self, project: str, run_id: str) -> None:
        super().__init__()
        self.project, self.run_id = project, run_id
        self.run_dir = locations.run_dir(project, run_id)
        self.history = RunHistory()
        self.metrics = RunMetrics()
        self.samples = RunSamples()
        self.method = ""
        self.weights: dict[str, float] = {}
        self.evaluated = ""  # an evaluation job's: the run it evaluates
        self.estimate: dict = {}  # the memory estimate the run was started with (JobSpec.estimate)
        self.view = "chart"  # or "samples"
        self.chart_name = ""  # the chart on show, kept by name as new charts arrive; "" the first
        self.picked = ""  # a metric charted alone (`m`)
        self.info: store.RunInfo | None = None
        self.resumable = False
        self.stopping = False
        self.resuming_since: float | None = None
        self._notes_shown = 0
        self._poll_now = threading.Event()
        self._info_error = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="error")
        with Horizontal(id="body"):
            with ContentSwitcher(initial="chart", id="view"):
                yield MetricChart(id="chart")
                yield SamplesPanel(id="samples")
            with Vertical(id="side"):
                yield RunStats(id="stats")
                yield GpuPanel(id="gpu")
        yield RichLog(id="log", wrap=True, min_width=20, max_lines=500)
        yield KeyFooter()

    def on_resize(self) -> None:
        self.set_class(self.size.width < NARROW, "-narrow")
        self.set_class(self.size.height < SHORT, "-short")

    def on_mount(self) -> None:
        self.title = f"Run {self.run_id}"
        self.sub_title = f"project {self.project}"
        self.query_one("#log", RichLog).border_title = "events"
        self.watch_run()
        self.set_interval(1.0, self._show_stats)

    # reading the run (thread) -------------------------------------------------

    @work(thread=True, exclusive=True, group="monitor.watch", exit_on_error=False)
    def watch_run(self) -> None:
        worker = get_current_worker()
        try:
            spec = JobSpec.load(self.run_dir)
            self.post_message(self.SpecRead(spec.method, reward_weights(spec.params),
                                            str(spec.params.get("run", "")) if spec.method == EVAL_METHOD else "",
                                            spec.estimate))
        except (OSError, ValueError, TypeError, KeyError):
            pass  # the method still comes with the `started` event
        tail = ev.EventTail(self.run_dir / layout.EVENTS)
        next_info = 0.0
        skipped = 0
        while not worker.is_cancelled:
            events = tail.read_new()
            if events or tail.skipped != skipped:
                skipped = tail.skipped
                self.post_message(self.EventsRead(events, skipped))
            if time.monotonic() >= next_info or self._poll_now.is_set():
                self._poll_now.clear()
                self.post_message(self._read_info())
                next_info = time.monotonic() + INFO_SECONDS
            self._poll_now.wait(TAIL_SECONDS)

    def _read_info(self) -> InfoRead:
        try:
            info = store.get(self.project, self.run_id)
            return self.InfoRead(info, info.resumable)
        except (store.RunError, OSError) as exc:
            return self.InfoRead(None, False, str(exc))

    # showing it (UI thread) ---------------------------------------------------

    def on_monitor_screen_events_read(self, message: EventsRead) -> None:
        self.history.add(message.events)
        self.metrics.add(message.events)
        self.samples.add(message.events)
        if message.skipped:  # under the event log, out of the way
            self.query_one("#log", RichLog).border_subtitle = \
                f"{message.skipped} unreadable line{'s' if message.skipped > 1 else ''} skipped"
        self._show_chart()
        self._samples(lambda panel: panel.show(self.samples))
        self._write_notes()
        self._show_error()
        self._show_stats()

    def on_monitor_screen_spec_read(self, message: SpecRead) -> None:
        self.method, self.weights, self.evaluated = message.method, message.weights, message.evaluated
        self.estimate = message.estimate
        self._show_chart()
        self.refresh_bindings()

    # the charts ----------------------------------------------------------------

    def charts(self) -> list[Chart]:
        """The method's charts that have data, then the metric picked with `m`."""
        charts = charts_for(self.method or self.metrics.method, self.metrics, self.weights)
        if self.picked and all(chart.name != self.picked for chart in charts):
            charts.append(single(self.metrics, self.picked))
        return charts

    def current_chart(self) -> tuple[Chart, int, int]:
        """The chart on show, its number and how many there are."""
        charts = self.charts()
        at = next((i for i, chart in enumerate(charts) if chart.name == self.chart_name), 0)
        return charts[at], at + 1, len(charts)

    def _show_chart(self) -> None:
        chart, number, count = self.current_chart()
        widget = self.query_one(MetricChart)
        border, empty = self.no_curve()
        widget.show(self.metrics, chart, empty)
        note = f" · {chart.note}" if chart.note else ""
        widget.border_title = border or f"{printable(chart.name)}{note}"
        widget.border_subtitle = f"chart {number}/{count}  [ ] m" if count > 1 else "m: any metric"

    def palette_commands(self) -> list[tuple[str, str, object]]:
        """One palette command per chart (`screens.commands` lists them beside the bindings)."""
        if self.view != "chart":
            return []
        return [(f"Chart: {chart.name}", f"chart {i}" + (f" (key {i})" if i < 10 else ""),
                 partial(self._choose_chart, chart.name)) for i, chart in enumerate(self.charts(), 1)]

    def _choose_chart(self, name: str) -> None:
        self.chart_name = name
        self._show_chart()

    def on_monitor_screen_info_read(self, message: InfoRead) -> None:
        if message.info is None:
            if message.error != self._info_error:  # once, not every poll
                self.notify(printable(message.error), severity="error", timeout=8, markup=False)
            self._info_error = message.error
            return
        self._info_error = ""
        keys = self._run_keys()
        self.info, self.resumable = message.info, message.resumable
        if self.stopping and not message.info.alive:
            self.stopping = False
        if self.resuming_since is not None and (
                message.info.alive or message.info.state == "failed"
                or time.monotonic() - self.resuming_since > RESUME_PATIENCE_SECONDS):
            self.resuming_since = None
        if self._run_keys() != keys:  # the footer is rebuilt on a change only: a rebuild shows blank a frame
            self.refresh_bindings()
        self._show_error()
        self._show_stats()

    def _run_keys(self) -> tuple:
        return tuple(self.check_action(action, ()) for action in ("stop", "resume", "export", "evaluate"))

    @property
    def state(self) -> str:
        if self.stopping:
            return "stopping"
        if self.resuming_since is not None:
            return "resuming"
        return self.info.state if self.info else "reading"

    def _message(self) -> str:
        """A line under the figures: what is happening, unless the figures already say it."""
        if self.stopping:
            return f"stopping… {on_stop(self.method or self.metrics.method)}"
        if self.resuming_since is not None:
            return "resuming from the last checkpoint…"
        if self.info is None or self.info.state == "failed":
            return ""  # the error banner says it
        if self.info.state == "running" and self.history.last_log_age() is not None:
            return ""  # training: the last status line is old news
        return self.info.message

    def _show_stats(self) -> None:
        alive = bool(self.info and self.info.alive)
        end = self.history.finished  # its peak memory, beside the estimate it started with
        peak = peak_figures(end.peak_memory, end.peak_gpu_memory, self.estimate) if end else ""
        self.query_one(RunStats).show(self.history, self.state, alive, self._message(), peak)

    def _show_error(self) -> None:
        """The current life's error, in a banner nobody can miss."""
        banner = self.query_one("#error", Static)
        failed = self.info is not None and self.info.state == "failed"
        message = self.history.error or (self.info.message if failed else "")
        if message:
            banner.update(Text.assemble(("✖ Training failed: ", "bold"), printable(message), "\n",
                                        (f"traceback: {self.run_dir / layout.STDERR}", "italic")))
        banner.display = bool(message)

    def _write_notes(self) -> None:
        log = self.query_one("#log", RichLog)
        for note in self.history.notes[self._notes_shown:]:
            log.write(self._note_text(note))
        self._notes_shown = len(self.history.notes)

    @staticmethod
    def _note_text(note: Note) -> Text:
        stamp = datetime.fromtimestamp(note.time).strftime("%H:%M:%S")
        return Text.assemble((stamp, "dim"), " ", (printable(note.text), NOTE_STYLES.get(note.kind, "")))

    # actions -------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("chart", "chart_number", "pick_metric"):
            return self.view == "chart"
        if action in ("page", "filter"):
            return self.view == "samples"
        if action == "full_text":  # only while some text is cut, or to cut it again
            panel = self.query_one(SamplesPanel)
            return self.view == "samples" and (panel.cut or panel.full)
        if action == "view":
            return parameters[0] != self.view if parameters else True
        # An action the run's state rules out is hidden (the footer must fit 80 columns); one held
        # up by a stop or resume under way is greyed out until it is done.
        busy = self.stopping or self.resuming_since is not None
        alive = bool(self.info and self.info.alive)
        if action == "stop":
            return None if self.stopping else alive and not busy
        if action == "resume":
            return None if self.resuming_since is not None else self.resumable and not busy
        if action == "export":
            return None if busy else self.info is not None and not alive and self.trains
        if action in ("playground", "evaluate"):  # a language model to talk to or score
            return (self.method or self.metrics.method) in LM_METHODS and (action == "playground" or not alive)
        if action == "report":
            return bool(self.trains or self.evaluated)
        return True

    def no_curve(self) -> tuple[str, str]:
        """(border, title) of the chart of a job that logs no training curve; ('', '') for a training run."""
        if self.trains or not (self.method or self.metrics.method):
            return "", ""
        if self.evaluated:
            return "an evaluation: no training curve", f"o: the report of {self.evaluated}"
        if self.method == "eval":
            return "an evaluation: no training curve", "its figures: c (compare) on the project"
        return "this job trains nothing: no curve", "what it did: the events below"

    @property
    def trains(self) -> bool:
        """Whether the run trains a model (not an evaluation, a sampling session, an export)."""
        return registry.trains(self.method or self.metrics.method)

    def action_chart(self, delta: int) -> None:
        charts = self.charts()
        _, number, count = self.current_chart()
        self._choose_chart(charts[(number - 1 + delta) % count].name)

    def action_chart_number(self, number: int) -> None:
        charts = self.charts()
        if number <= len(charts):
            self._choose_chart(charts[number - 1].name)

    def action_pick_metric(self) -> None:
        if not self.metrics.names():
            self.notify("No metric has been logged yet.", timeout=4)
            return

        def picked(name: str | None) -> None:
            if name:
                self.picked = name
                self._choose_chart(name)

        self.app.push_screen(MetricPicker(self.metrics, self.picked), picked)

    def action_view(self, view: str) -> None:
        self.view = view
        self.query_one("#view", ContentSwitcher).current = "samples" if view == "samples" else "chart"
        self.set_class(view == "samples", "-samples")
        if view == "samples":
            self.query_one("#samples-scroll").focus()
        self.refresh_bindings()

    def action_page(self, delta: int) -> None:
        self._samples(lambda panel: panel.page(delta))

    def action_filter(self, how: str) -> None:
        self._samples(lambda panel: panel.set_filter(how))

    def action_full_text(self) -> None:
        self._samples(SamplesPanel.toggle_full)

    def _samples(self, change) -> None:
        """Change the samples panel; the footer offers `x` while its page cuts some text."""
        panel = self.query_one(SamplesPanel)
        cut = panel.cut
        change(panel)
        if panel.cut != cut:
            self.refresh_bindings()

    def action_stop(self) -> None:
        self.stopping = True
        self.refresh_bindings()
        self._show_stats()
        self._stop_run()

    @work(thread=True, group="monitor.act", exit_on_error=False)
    def _stop_run(self) -> None:
        try:
            store.stop(self.project, self.run_id)
        finally:
            self._poll_now.set()

    def action_resume(self) -> None:
        self.resuming_since = time.monotonic()
        self.refresh_bindings()
        self._show_stats()
        self._resume_run()

    @work(thread=True, group="monitor.act", exit_on_error=False)
    def _resume_run(self) -> None:
        try:
            launch.resume(self.project, self.run_id, wait_for_start=False)
        finally:
            self._poll_now.set()

    def action_export(self) -> None:
        self.post_message(ExportRun(self.project, self.run_id))

    def action_playground(self) -> None:
        from screens.playground import PlaygroundScreen

        self.app.push_screen(PlaygroundScreen(self.project, models=("base", f"run:{self.run_id}")))

    def action_report(self) -> None:
        from screens.report import ReportScreen

        self.app.push_screen(ReportScreen(self.project, self.evaluated or self.run_id))

    def action_evaluate(self) -> None:
        from screens.evaluate import EvaluateScreen
        from screens.report import ReportScreen

        def started(folder) -> None:
            if folder is not None:
                self.app.push_screen(ReportScreen(self.project, self.run_id))

        self.app.push_screen(EvaluateScreen(self.project, self.run_id), started)

    def action_back(self) -> None:
        self.app.pop_screen()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A failed action or watcher becomes a readable notice, and the screen unlocks."""
        if event.state != WorkerState.ERROR or not event.worker.group.startswith("monitor."):
            return
        error = event.worker.error
        self.stopping, self.resuming_since = False, None
        self.refresh_bindings()
        self._show_stats()
        self.notify(printable(error) or type(error).__name__, title="Run", severity="error", timeout=10, markup=False)
        if event.worker.group == "monitor.watch":
            self.set_timer(2.0, self.watch_run)
