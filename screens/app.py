"""The workbench app: composes the screens and routes the messages they send up."""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.binding import Binding
from textual.widgets import HelpPanel, Input, TextArea

from screens.commands import ScreenCommands
from screens.messages import ExportRun, OpenData, OpenProject, OpenRun, RunStarted, WorkerFailed
from screens.projects import ProjectsScreen


class WorkbenchApp(App[int]):
    """Projects home first; every other screen is pushed on top of it."""

    TITLE = "Workbench"
    CSS_PATH = Path(__file__).parent / "styles" / "app.tcss"  # absolute, so subclasses elsewhere find it
    COMMANDS = App.COMMANDS | {ScreenCommands}
    MODES = {"projects": ProjectsScreen}  # a mode, not get_default_screen(), so its CSS_PATH loads
    DEFAULT_MODE = "projects"
    BINDINGS = [
        Binding("question_mark,f1", "toggle_keys", "Keys", tooltip="Every key of this screen, in a panel (again: hide)",
                id="app.keys"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def action_toggle_keys(self) -> None:
        """Textual's keys panel: every binding of the focused widget, the screen and the app."""
        if self.screen.query(HelpPanel):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def get_key_display(self, binding: Binding) -> str:
        """`?` opens the keys panel, except while a text field takes the `?`: then F1."""
        if binding.id == "app.keys":
            typing = isinstance(self.focused, (Input, TextArea))
            return "F1" if typing else "?"
        return super().get_key_display(binding)

    def on_open_project(self, message: OpenProject) -> None:
        from screens.project import ProjectScreen

        self.push_screen(ProjectScreen(message.project))

    def on_open_data(self, message: OpenData) -> None:
        from screens.data.screen import DataScreen

        self.push_screen(DataScreen(message.project, message.dataset))

    def on_open_run(self, message: OpenRun) -> None:
        from screens.monitor import MonitorScreen

        self.push_screen(MonitorScreen(message.project, message.run_id))

    def on_run_started(self, message: RunStarted) -> None:
        from screens.monitor import MonitorScreen

        self.switch_screen(MonitorScreen(message.project, message.run_id))

    def on_export_run(self, message: ExportRun) -> None:
        from screens.export.screen import ExportScreen

        self.push_screen(ExportScreen(message.project, message.run_id))

    def on_worker_failed(self, message: WorkerFailed) -> None:
        self.notify(message.text, title="Something went wrong", severity="error", timeout=10,
                    markup=False)


def run_app() -> int:
    """Run the app in this terminal; the exit code for the shell."""
    app = WorkbenchApp()
    app.run()
    return app.return_code or 0
