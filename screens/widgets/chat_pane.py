"""One side of the playground: a model picked from a list, its status, and its conversation as it streams."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Select, Static

from workbench.terminal import printable

NO_MODEL = "(no model)"


class ChatPane(Vertical):
    """Pane `index` (0 left, 1 right). The screen owns the model's client; the pane shows and keeps the turns."""

    DEFAULT_CSS = """
    ChatPane {
        border: round $primary-darken-2;
        border-title-color: $text;
        border-title-style: bold;
        border-subtitle-color: $text-muted;
        width: 1fr;
        height: 1fr;
        padding: 0 1;
    }
    ChatPane:focus-within {
        border: round $accent;
    }
    ChatPane > Select {
        width: 1fr;
        margin-bottom: 1;
    }
    ChatPane > .pane-status {
        height: auto;
        max-height: 2;
        color: $text-muted;
    }
    ChatPane > .pane-status.-error {
        color: $error;
    }
    ChatPane > VerticalScroll {
        height: 1fr;
        scrollbar-size-vertical: 1;
    }
    ChatPane .turn {
        margin-top: 1;
        width: 1fr;
    }
    ChatPane .turn.user {
        color: $text-accent;
        text-style: bold;
    }
    ChatPane .turn.-streaming {
        color: $text;
    }
    ChatPane .turn.-note {
        color: $text-muted;
        text-style: italic;
        margin-top: 0;
    }
    """

    class Picked(Message):
        """The person picked another model for this pane (`ref` empty: none)."""

        def __init__(self, pane: ChatPane, ref: str) -> None:
            super().__init__()
            self.pane, self.ref = pane, ref

    def __init__(self, index: int, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.index = index
        self.ref = ""  # the model it shows
        self.labels: dict[str, str] = {}  # ref -> what the list shows
        self.messages: list[dict[str, str]] = []  # its conversation (user and assistant turns)
        self.answering = False
        self._answer: Static | None = None
        self._text = ""

    @property
    def side(self) -> str:
        return "left" if self.index == 0 else "right"

    def compose(self) -> ComposeResult:
        yield Select([], prompt=NO_MODEL, id=f"model-{self.side}", compact=True,
                     tooltip="The model of this pane: the base, a run, a checkpoint or an exported GGUF")
        yield Static(f"Pick a model for the {self.side} pane.", classes="pane-status")
        yield VerticalScroll(classes="turns")

    def on_mount(self) -> None:
        self.border_title = f"{self.side.capitalize()}: {NO_MODEL}"

    # the model -----------------------------------------------------------------------

    def set_choices(self, choices: list[tuple[str, str]], selected: str = "") -> None:
        """(label, ref) options; `selected` picks one (which posts Picked)."""
        select = self.query_one(Select)
        self.labels = {ref: printable(label) for label, ref in choices}
        select.set_options([(label, ref) for ref, label in self.labels.items()])
        if selected and any(ref == selected for _, ref in choices):
            select.value = selected

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        ref = "" if event.value is Select.NULL else str(event.value)
        if ref != self.ref:
            self.ref = ref
            self.border_title = f"{self.side.capitalize()}: {self.labels.get(ref, ref) if ref else NO_MODEL}"
            self.post_message(self.Picked(self, ref))

    def set_status(self, text: str, error: bool = False) -> None:
        status = self.query_one(".pane-status", Static)
        status.update(Text(printable(text)))
        status.set_class(error, "-error")

    # the turns -----------------------------------------------------------------------

    def _add(self, text: str, *classes: str) -> Static:
        turn = Static(Text(printable(text)), classes=" ".join(("turn", *classes)))
        scroll = self.query_one(".turns", VerticalScroll)
        scroll.mount(turn)
        scroll.scroll_end(animate=False)
        return turn

    def add_user(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})
        self._add(f"› {text}", "user")

    def begin_answer(self) -> None:
        self.answering, self._text = True, ""
        self._answer = self._add("…", "assistant", "-streaming")

    def add_text(self, text: str) -> None:
        if self._answer is None:
            return
        self._text += text
        self._answer.update(Text(printable(self._text)))
        scroll = self.query_one(".turns", VerticalScroll)
        if scroll.max_scroll_y - scroll.scroll_y <= 3:  # follow the answer unless the person scrolled up
            scroll.scroll_end(animate=False)

    def end_answer(self, text: str | None, note: str = "") -> None:
        """The answer is complete (`text` None: it failed, and the user's turn waits for another try)."""
        self.answering = False
        if self._answer is not None:
            self._answer.remove_class("-streaming")
            if text is None:
                self._answer.remove()
            else:
                self._answer.update(Text(printable(text or "(empty answer)")))
        if text is not None:
            self.messages.append({"role": "assistant", "content": text})
        self._answer = None
        if note:
            self._add(note, "-note")

    def last_answer(self) -> str | None:
        return self.messages[-1]["content"] if self.messages and self.messages[-1]["role"] == "assistant" else None

    def drop_last_answer(self) -> bool:
        """Remove the last answer (and the notes under it) to ask again; False when there is none."""
        if self.last_answer() is None:
            return False
        self.messages.pop()
        turns = list(self.query_one(".turns", VerticalScroll).children)
        while turns and "user" not in turns[-1].classes:
            turns.pop().remove()
        return True

    def replace_last_answer(self, text: str, note: str) -> None:
        """Show `text` as the last answer (kept from the other pane, or edited), with a note saying so."""
        if self.drop_last_answer():
            self.begin_answer()
            self.end_answer(text, note)

    def clear(self) -> None:
        self.messages = []
        self.answering, self._answer = False, None
        self.query_one(".turns", VerticalScroll).remove_children()
