"""Export a run as a LoRA adapter or a merged model, in a child process.

The export loads the model, so it runs as `python -m workbench.cli.main export ...`: its
stdout lines are the progress, its last stdout line the output folder, and a failure
is one line on stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, RadioButton, RadioSet, RichLog, Static

from screens.export_gguf import FileLines, QuantPicker, file_line
from workbench.export import default_out

FORMATS = {"lora": "LoRA adapter (small; loads on top of the base model)",
           "merged": "Merged model (standalone folder with full weights)",
           "gguf": "GGUF for llama.cpp / Ollama (merged, F16 plus each quant type; verified)",
           "gguf-lora": "GGUF LoRA adapter (for --lora on a GGUF of the base model)"}


def folder_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def one_line_error(stderr: str, code: int) -> str:
    """The CLI's `workbench: error: ...` line, else the last line of stderr."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("workbench: error:"):
            return line.removeprefix("workbench: error:").strip()
    return lines[-1] if lines else f"the export exited with status {code}"


class ExportScreen(Screen):
    CSS_PATH = "styles/export.tcss"
    BINDINGS = [
        Binding("ctrl+s", "start", "Export", id="export.start"),
        Binding("escape", "back", "Back", id="export.back"),
    ]

    class Progress(Message):
        def __init__(self, line: str) -> None:
            super().__init__()
            self.line = line

    class Done(Message):
        def __init__(self, path: Path, size: int) -> None:
            super().__init__()
            self.path, self.size = path, size

    class Failed(Message):
        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    def __init__(self, project: str, run_id: str) -> None:
        super().__init__()
        self.project, self.run_id = project, run_id
        self.fmt = "lora"
        self.running = False
        self.result: Path | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="form"):
            yield Label("Format", classes="field")
            with RadioSet(id="format"):
                for fmt, text in FORMATS.items():
                    yield RadioButton(text, id=fmt, value=fmt == self.fmt)
            yield Label("Quant types", classes="field gguf-only")
            yield QuantPicker(id="quant-picker", classes="gguf-only")
            yield Checkbox("Chats must end on their own (turn off for a model not trained to chat)",
                           value=True, id="chat-check", classes="gguf-any")
            yield Label("Output folder (must be new or empty)", classes="field")
            yield Input(str(default_out(self.project, self.run_id, self.fmt)), id="out")
            with Horizontal(id="actions"):
                yield Button("Export", id="start", variant="primary")
                yield Label("the export loads the model in a separate process", id="hint")
            yield Static(id="result")
            yield FileLines(id="files")
        yield RichLog(id="progress", wrap=True, min_width=20, max_lines=1000)
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"Export {self.run_id}"
        self.sub_title = f"project {self.project}"
        self.query_one("#progress", RichLog).border_title = "progress"
        self._show_quants()

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
        self._set_running(True)
        self.query_one(FileLines).clear()
        self.query_one("#result", Static).update(Text("exporting…", style="italic"))
        self.query_one("#progress", RichLog).write(Text(f"Exporting {self.fmt} to {out}", style="bold"))
        self.run_export(self.fmt, str(Path(out).expanduser()), quants,
                        self.query_one("#chat-check", Checkbox).value)

    def action_back(self) -> None:
        self.app.pop_screen()

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.query_one("#start", Button).disabled = running
        self.refresh_bindings()

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def run_export(self, fmt: str, out: str, quants: list[str], chat_check: bool = True) -> None:
        cmd = [sys.executable, "-m", "workbench.cli.main", "export", self.project, self.run_id,
               "--format", fmt, "--out", out]
        if fmt == "gguf":
            cmd += ["--quant", ",".join(quants)]
        if fmt.startswith("gguf") and not chat_check:
            cmd.append("--no-chat-check")
        env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
        last = ""
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                    text=True, bufsize=1, env=env)
            for line in proc.stdout:
                line = line.rstrip()
                if line:
                    last = line
                    self.post_message(self.Progress(line))
            code = proc.wait()
            err.seek(0)
            stderr = err.read().decode(errors="replace")
        if code != 0:
            self.post_message(self.Failed(one_line_error(stderr, code)))
            return
        path = Path(last)
        self.post_message(self.Done(path, folder_size(path) if path.exists() else 0))

    def on_export_screen_progress(self, message: Progress) -> None:
        self.query_one("#progress", RichLog).write(message.line)
        text = file_line(message.line)
        if text is not None:
            self.query_one(FileLines).add(text)

    def on_export_screen_done(self, message: Done) -> None:
        self.result = message.path
        self._set_running(False)
        text = Text.assemble(("✔ Written to ", "bold green"), str(message.path),
                             (f"  ({human_size(message.size)} on disk)", "dim"))
        self.query_one("#result", Static).update(text)
        self.query_one("#progress", RichLog).write(Text(f"Done: {message.path}", style="green"))

    def on_export_screen_failed(self, message: Failed) -> None:
        self._show_failure(message.error)

    def on_worker_state_changed(self, event) -> None:
        if event.worker.group == "export" and event.worker.error is not None:
            self._show_failure(str(event.worker.error) or type(event.worker.error).__name__)

    def _show_failure(self, error: str) -> None:
        self._set_running(False)
        self.query_one("#result", Static).update(Text.assemble(("✖ Export failed: ", "bold red"), (error, "red")))
        self.query_one("#progress", RichLog).write(Text(f"Failed: {error}", style="red"))
        self.notify(error, title="Export failed", severity="error", timeout=10)
