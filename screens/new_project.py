"""A modal that creates a project: a name and a base model, checked before anything is written."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from screens.widgets.footer import KeyFooter
from workbench import models
from workbench import project as projects

DEFAULT_HELP = f"'default' is the embedded {models.DEFAULT_NAME}; or give a model folder or a .gguf file."


class NewProjectScreen(ModalScreen[str | None]):
    """Dismissed with the new project's name, or None when cancelled."""

    CSS_PATH = "styles/new_project.tcss"
    BINDINGS = [
        Binding("ctrl+s", "create", "Create", id="new_project.create"),
        Binding("escape", "cancel", "Cancel", id="new_project.cancel"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("New project", classes="title")
            yield Label("Name")
            yield Input(placeholder="e.g. support-bot (letters, digits, - _ .)", id="name")
            yield Static(id="name-error", classes="error", markup=False)
            yield Label("Base model")
            yield Input(value=projects.DEFAULT_BASE_MODEL, id="base")
            yield Static(DEFAULT_HELP, classes="help")
            yield Static(id="base-error", classes="error", markup=False)
            yield Static("[b]enter[/b] create   [b]escape[/b] cancel", classes="keys")
        yield KeyFooter()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "name":
            self.query_one("#name-error", Static).update(self.name_problem(event.value) or "")
        else:
            self.query_one("#base-error", Static).update("")

    def name_problem(self, name: str) -> str | None:
        if not name:
            return None
        try:
            projects.validate_name(name)
        except projects.ProjectError as exc:
            return str(exc)
        return None

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "name" and not self.query_one("#base", Input).value.strip():
            self.query_one("#base", Input).focus()
            return
        self.action_create()

    def action_create(self) -> None:
        name = self.query_one("#name", Input).value.strip()
        base = self.query_one("#base", Input).value.strip() or projects.DEFAULT_BASE_MODEL
        try:
            projects.validate_name(name)
        except projects.ProjectError as exc:
            self.show_error("name", str(exc))
            return
        try:
            projects.create(name, base_model=base)
        except projects.ProjectError as exc:
            self.show_error("name" if "already exists" in str(exc) else "base", str(exc))
            return
        self.dismiss(name)

    def show_error(self, field: str, text: str) -> None:
        self.query_one(f"#{field}-error", Static).update(text)
        self.query_one(f"#{field}", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)
