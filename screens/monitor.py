"""Watch a run: loss chart, figures, machine load and the run's event log.

The run is a folder written by a worker process. A thread tails its `events.jsonl`
from the start (so reattaching shows the whole history) and polls the run's state;
both reach the screen as messages. Stop and resume act on the worker through
`workbench.jobs`, never by touching the process directly.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, RichLog, Static
from textual.worker import Worker, WorkerState, get_current_worker

from screens.messages import ExportRun
from screens.run_history import Note, RunHistory
from screens.widgets.gpu_panel import GpuPanel
from screens.widgets.loss_chart import LossChart
from screens.widgets.run_stats import RunStats
from workbench import locations
from workbench.jobs import launch, store
from workbench.run import events as ev
from workbench.run import layout
from workbench.terminal import printable

TAIL_SECONDS = 0.3
INFO_SECONDS = 1.5
RESUME_PATIENCE_SECONDS = 120.0
NOTE_STYLES = {"error": "bold red", "warning": "bold yellow", "checkpoint": "green", "finished": "bold",
               "started": "cyan"}


class MonitorScreen(Screen):
    CSS_PATH = "styles/monitor.tcss"
    BINDINGS = [
        Binding("s", "stop", "Stop (checkpoint)", id="monitor.stop"),
        Binding("r", "resume", "Resume", id="monitor.resume"),
        Binding("e", "export", "Export", id="monitor.export"),
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

    def __init__(self, project: str, run_id: str) -> None:
        super().__init__()
        self.project, self.run_id = project, run_id
        self.run_dir = locations.run_dir(project, run_id)
        self.history = RunHistory()
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
            yield LossChart(id="chart")
            with Vertical(id="side"):
                yield RunStats(id="stats")
                yield GpuPanel(id="gpu")
        yield RichLog(id="log", wrap=True, min_width=20, max_lines=500)
        yield Footer()

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
        if message.skipped:  # under the event log, out of the way
            self.query_one("#log", RichLog).border_subtitle = \
                f"{message.skipped} unreadable line{'s' if message.skipped > 1 else ''} skipped"
        self.query_one(LossChart).show(self.history.train, self.history.eval)
        self._write_notes()
        self._show_error()
        self._show_stats()

    def on_monitor_screen_info_read(self, message: InfoRead) -> None:
        if message.info is None:
            if message.error != self._info_error:  # once, not every poll
                self.notify(printable(message.error), severity="error", timeout=8, markup=False)
            self._info_error = message.error
            return
        self._info_error = ""
        self.info, self.resumable = message.info, message.resumable
        if self.stopping and not message.info.alive:
            self.stopping = False
        if self.resuming_since is not None and (
                message.info.alive or message.info.state == "failed"
                or time.monotonic() - self.resuming_since > RESUME_PATIENCE_SECONDS):
            self.resuming_since = None
        self.refresh_bindings()
        self._show_error()
        self._show_stats()

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
            return "stopping… the worker saves a checkpoint, then exits"
        if self.resuming_since is not None:
            return "resuming from the last checkpoint…"
        if self.info is None or self.info.state == "failed":
            return ""  # the error banner says it
        if self.info.state == "running" and self.history.last_log_age() is not None:
            return ""  # training: the last status line is old news
        return self.info.message

    def _show_stats(self) -> None:
        alive = bool(self.info and self.info.alive)
        self.query_one(RunStats).show(self.history, self.state, alive, self._message())

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
        busy = self.stopping or self.resuming_since is not None
        alive = bool(self.info and self.info.alive)
        if action == "stop":
            return True if alive and not busy else None
        if action == "resume":
            return True if self.resumable and not busy else None
        if action == "export":
            return True if self.info is not None and not alive and not busy else None
        return True

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
