"""Edit an answer before it is kept as an example to learn from."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea

from screens.widgets.footer import KeyFooter


class EditAnswerScreen(ModalScreen[str | None]):
    """Returns the edited answer (ctrl+s), or None (escape)."""

    DEFAULT_CSS = """
    EditAnswerScreen {
        align: center middle;
    }
    EditAnswerScreen > Vertical {
        width: 90%;
        height: 80%;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    EditAnswerScreen TextArea {
        height: 1fr;
    }
    EditAnswerScreen .hint {
        color: $text-muted;
    }
    """
    BINDINGS = [
        Binding("ctrl+s", "save", "Save example", id="edit_answer.save"),
        Binding("escape", "cancel", "Cancel", id="edit_answer.cancel"),
    ]

    def __init__(self, title: str, answer: str) -> None:
        super().__init__()
        self.title_text, self.answer = title, answer

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            yield Static("Edit the answer as it should have been; ctrl+s keeps it, escape leaves it.", classes="hint")
            yield TextArea(self.answer, soft_wrap=True, id="answer")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_save(self) -> None:
        self.dismiss(self.query_one(TextArea).text)

    def action_cancel(self) -> None:
        self.dismiss(None)
