"""Pick a saved playground conversation to take up again: newest first, each with its models and its
first message (`workbench.serve.conversations` keeps them in the project)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from screens.messages import forward_failure
from screens.widgets.footer import KeyFooter
from workbench.serve import conversations
from workbench.terminal import printable

SHOWN = 200  # the newest conversations listed


def describe(data: dict[str, Any]) -> Text:
    """`2026-11-30 18:05 · base model | r1 (sft, final) · Turn this into JSON…`"""
    when = datetime.fromtimestamp(float(data.get("updated") or data.get("created") or 0)).strftime("%Y-%m-%d %H:%M")
    panes = data.get("panes") or []
    models = " | ".join(str(p.get("label") or p.get("model") or "?") for p in panes)
    first = next((m.get("content", "") for p in panes for m in p.get("messages", []) if m.get("role") == "user"), "")
    turns = max((sum(m.get("role") == "user" for m in p.get("messages", [])) for p in panes), default=0)
    return Text.assemble((when, "bold"), f" · {printable(models)} · ", (f"{turns} turn(s) ", "dim"),
                         printable(" ".join(str(first).split()))[:200])


def read_all(project: str) -> list[tuple[str, dict[str, Any]]]:
    """(id, conversation) of the newest saved ones that can be read."""
    found = []
    for conversation_id in conversations.list_ids(project)[:SHOWN]:
        try:
            data = conversations.load(project, conversation_id)
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("panes"), list):
            found.append((conversation_id, data))
    return found


class ConversationsScreen(ModalScreen[dict | None]):
    """Returns the chosen conversation (as saved), or None."""

    DEFAULT_CSS = """
    ConversationsScreen {
        align: center middle;
    }
    ConversationsScreen > Vertical {
        width: 90%;
        height: 80%;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    ConversationsScreen OptionList {
        height: 1fr;
    }
    ConversationsScreen .hint {
        color: $text-muted;
    }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="conversations.cancel"),
    ]

    def __init__(self, project: str) -> None:
        super().__init__()
        self.project = project
        self.found: list[tuple[str, dict[str, Any]]] | None = None

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Saved conversations"
            yield Static("Reading…", classes="hint", id="hint")
            yield OptionList(id="list")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exit_on_error=False, name="Reading the conversations")
    def load(self) -> None:
        found = read_all(self.project)
        self.app.call_from_thread(self.show, found)

    def show(self, found: list[tuple[str, dict[str, Any]]]) -> None:
        self.found = found
        options = self.query_one(OptionList)
        options.add_options([Option(describe(data), id=conversation_id) for conversation_id, data in found])
        self.query_one("#hint", Static).update(
            "Enter takes one up again: its models, settings and turns." if found else
            "None saved yet: each answer saves the conversation it belongs to.")
        if found:
            options.highlighted = 0
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        data = dict(self.found or []).get(event.option.id or "")
        if data is not None:
            self.dismiss({**data, "id": event.option.id})

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_worker_state_changed(self, event) -> None:
        forward_failure(self, event)
