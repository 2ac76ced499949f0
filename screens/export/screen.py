"""Export a run: a LoRA adapter, a merged model or GGUF files.

The export loads the model, so it is a job of its own (`workbench.export.job`): a detached
worker that goes on if the app quits or the SSH connection drops. This screen starts it and
follows its events from the first; opened while an export of the run is running, it reattaches
to that export. Stopping it sends SIGTERM; the export then removes its scratch folder.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Header, Input, Label, RadioButton, RadioSet, RichLog, Static
from textual.worker import get_current_worker

from screens.export.gguf import FileLines, QuantPicker, file_line
from screens.widgets.footer import KeyFooter
from screens.widgets.toggles import MarkedCheckbox, MarkedRadioButton
from workbench.export import default_out
from workbench.export import job as export_job
from workbench.export.gguf import human_size
from workbench.jobs.store import RunError
from workbench.run import events as ev
from workbench.run.spec import JobSpec
from workbench.terminal import printable

FORMATS = {"lora": "LoRA adapter (small; loads on top of the base model)",
           "merged": "Merged model (standalone folder with full weights)",
           "gguf": "GGUF for llama.cpp / Ollama (F16 and each quant type, verified)",
           "gguf-lora": "GGUF LoRA adapter (for --lora on a GGUF of the base model)"}


class ExportScreen(Screen):
    CSS_PATH = "screen.tcss"
    BINDINGS = [
        Binding("ctrl+s", "start", "Export", id="export.start"),
        Binding("ctrl+t", "stop", "Stop export", id="export.stop"),
        Binding("escape", "back", "Back", id="export.back"),
    ]

    class Started(Message):
        def __init__(self, folder: Path) -> None:
            super().__init__()
            self.folder = folder

    class Progress(Message):
        def __init__(self, line: str) -> None:
            super().__init__()
            self.line = line

    class FileWritten(Message):
        def __init__(self, event: ev.Artifact) -> None:
            super().__init__()
            self.event = event

    class Done(Message):
        def __init__(self, path: Path, size: int) -> None:
            super().__init__()
            self.path, self.size = path, size

    class Stopped(Message):
        pass

    class Failed(Message):
        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    def __init__(self, project: str, run_id: str) -> None:
        super().__init__()
        self.project, self.run_id = project, run_id
        self.fmt = "lora"
        self.running = False
        self.job: Path | None = None  # the folder of the export being followed
        self.result: Path | None = None
        self.replace_asked: str | None = None  # the output folder whose earlier export the person was asked about

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="form"):
            yield Label("Format", classes="field")
            with RadioSet(id="format"):
                for fmt, text in FORMATS.items():
                    yield MarkedRadioButton(text, id=fmt, value=fmt == self.fmt)
            yield Label("Quant types", classes="field gguf-only")
            yield QuantPicker(id="quant-picker", classes="gguf-only")
            yield MarkedCheckbox("Chats must end on their own (off for a model not trained to chat)",
                           value=True, id="chat-check", classes="gguf-any")
            yield Label("Output folder (must be new or empty)", classes="field")
            yield Input(str(default_out(self.project, self.run_id, self.fmt)), id="out", compact=True)
            with Horizontal(id="actions"):
                yield Button("Export", id="start", variant="primary", compact=True)
                yield Label("the export loads the model in a separate process", id="hint")
            yield Static(id="result")
            yield FileLines(id="files")
        yield RichLog(id="progress", wrap=True, min_width=20, max_lines=1000)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.title = f"Export {self.run_id}"
        self.sub_title = f"project {self.project}"
        self.query_one("#progress", RichLog).border_title = "progress"
        self._show_quants()
        folder = export_job.running(self.project, self.run_id)
        if folder is not None:
            self._reattach(folder)

    def _reattach(self, folder: Path) -> None:
        """Show the running export's settings and follow it from its first event."""
        params = JobSpec.load(folder).params
        self.fmt = params["format"]
        self.query_one(f"#{self.fmt}", RadioButton).value = True
        self.query_one("#out", Input).value = params["out"]
        for box in self.query_one(QuantPicker).query(Checkbox):
            box.value = str(box.label) in params["quants"]
        self.query_one("#chat-check", Checkbox).value = params["chat_check"]
        self._show_quants()
        self.job = folder
        self._begin(params["format"], params["out"])
        self.follow_export(folder)

    def _show_quants(self) -> None:
        for widget in self.query(".gguf-only"):
            widget.display = self.fmt == "gguf"
        for widget in self.query(".gguf-any"):
            widget.display = self.fmt.startswith("gguf")

    @on(RadioSet.Changed, "#format")
    def _format_changed(self, event: RadioSet.Changed) -> None:
        out = self.query_one("#out", Input)
        old_default = str(default_out(self.project, self.run_id, self.fmt))
        self.fmt = event.pressed.id or "lora"
        if out.value == old_default:  # follow the format unless the person typed a folder
            out.value = str(default_out(self.project, self.run_id, self.fmt))
        self._show_quants()

    @on(Button.Pressed, "#start")
    @on(Input.Submitted, "#out")
    def _start_pressed(self) -> None:
        self.action_start()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.running
        return None if action == "start" and self.running else True

    def action_start(self) -> None:
        if self.running:
            return
        out = self.query_one("#out", Input).value.strip()
        if not out:
            self.notify("Choose an output folder.", severity="warning")
            return
        quants = self.query_one(QuantPicker).selected
        if self.fmt == "gguf" and not quants:
            self.notify("Choose at least one quant type.", severity="warning")
            return
        force = self._replacing(Path(out).expanduser().absolute())
        if force is None:
            return
        self._begin(self.fmt, out)
        self.run_export(self.fmt, str(Path(out).expanduser()), quants,
                        self.query_one("#chat-check", Checkbox).value, force)

    def _replacing(self, out: Path) -> bool | None:
        """Whether the export replaces an earlier one in `out`: False when there is none; None (not yet)
        the first time: the person is told what is there and starts again to replace it."""
        state, detail = export_job.out_state(out)
        if state not in ("complete", "half"):
            self.replace_asked = None
            return False  # empty, or another's files: the job's own check refuses those in one line
        if self.replace_asked == str(out):
            self.replace_asked = None
            return True
        self.replace_asked = str(out)
        what = f"a half-made export{detail}" if state == "half" else "an earlier export"
        self.notify(printable(f"{out} holds {what}. Start again to replace it, or choose another folder."),
                    title="Replace?", severity="warning", timeout=10, markup=False)
        return None

    def _begin(self, fmt: str, out: str) -> None:
        self._set_running(True)
        self.query_one(FileLines).clear()
        self.query_one("#result", Static).update(Text("exporting…", style="italic"))
        self.query_one("#progress", RichLog).write(Text(printable(f"Exporting {fmt} to {out}"), style="bold"))

    def action_stop(self) -> None:
        if self.job is None:
            self.notify("The export is still starting.", severity="warning")
            return
        try:
            export_job.stop(self.job)
        except RunError as exc:
            self.notify(printable(exc), severity="warning", markup=False)
            return
        self.query_one("#progress", RichLog).write(Text("Stopping…", style="italic"))

    def action_back(self) -> None:
        if self.running:
            self.notify("The export goes on; open Export again to follow it.", title="Export")
        self.app.pop_screen()

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.query_one("#start", Button).disabled = running
        self.refresh_bindings()

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def run_export(self, fmt: str, out: str, quants: list[str], chat_check: bool = True, force: bool = False) -> None:
        folder = export_job.start(self.project, self.run_id, fmt, out, quants, chat_check=chat_check, force=force)
        self.post_message(self.Started(folder))
        self._follow(folder)

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def follow_export(self, folder: Path) -> None:
        self._follow(folder)

    def _follow(self, folder: Path) -> None:
        """Post the export's events as messages, from the first, until it ends or the screen closes."""
        worker = get_current_worker()
        out = JobSpec.load(folder).params["out"]
        for event in export_job.follow(folder, cancelled=lambda: worker.is_cancelled):
            line = export_job.describe(event)
            if line:
                self.post_message(self.Progress(line))
            if isinstance(event, ev.Artifact) and event.path != out:
                self.post_message(self.FileWritten(event))
            elif isinstance(event, ev.Error):
                self.post_message(self.Failed(event.message))
            elif isinstance(event, ev.Finished) and event.reason == "completed":
                path = Path(event.output)
                self.post_message(self.Done(path, export_job.folder_size(path) if path.exists() else 0))
            elif isinstance(event, ev.Finished):
                self.post_message(self.Stopped())

    def on_export_screen_started(self, message: Started) -> None:
        self.job = message.folder

    def on_export_screen_progress(self, message: Progress) -> None:
        self.query_one("#progress", RichLog).write(Text(printable(message.line)))

    def on_export_screen_file_written(self, message: FileWritten) -> None:
        self.query_one(FileLines).add(file_line(message.event))

    def on_export_screen_done(self, message: Done) -> None:
        self.result = message.path
        self._set_running(False)
        text = Text.assemble(("✔ Written to ", "bold green"), printable(message.path),
                             (f"  ({human_size(message.size)} on disk)", "dim"))
        self.query_one("#result", Static).update(text)
        self.query_one("#progress", RichLog).write(Text(printable(f"Done: {message.path}"), style="green"))

    def on_export_screen_stopped(self, message: Stopped) -> None:
        self._set_running(False)
        self.query_one("#result", Static).update(Text("■ Export stopped", style="bold yellow"))
        self.query_one("#progress", RichLog).write(Text("Stopped", style="yellow"))

    def on_export_screen_failed(self, message: Failed) -> None:
        self._show_failure(message.error)

    def on_worker_state_changed(self, event) -> None:
        if event.worker.group == "export" and event.worker.error is not None:
            self._show_failure(str(event.worker.error) or type(event.worker.error).__name__)

    def _show_failure(self, error: str) -> None:
        error = printable(error)
        self._set_running(False)
        self.query_one("#result", Static).update(Text.assemble(("✖ Export failed: ", "bold red"), (error, "red")))
        self.query_one("#progress", RichLog).write(Text(f"Failed: {error}", style="red"))
        self.notify(error, title="Export failed", severity="error", timeout=10, markup=False)
