"""One sampled answer as a numbered card: its whole text (scrolling when long), its place, its score."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.containers import VerticalScroll
from textual.markup import escape
from textual.message import Message
from textual.widgets import Static

from workbench.terminal import printable


CUT = " … (cut: the token limit ended it)"  # after an answer the model had not finished


class CandidateCard(VerticalScroll):
    """Card `number` (1-based, as the key that picks it); the screen sets its badge and score."""

    DEFAULT_CSS = """
    CandidateCard {
        border: round $primary-darken-2;
        border-title-color: $text;
        border-title-style: bold;
        border-subtitle-color: $text;
        padding: 0 1;
        height: 1fr;
        width: 1fr;
    }
    CandidateCard:focus {
        border: round $accent;
    }
    CandidateCard.-ranked {
        border: round $success;
        border-subtitle-style: bold;
        border-subtitle-background: $success-darken-2;
    }
    CandidateCard.-tied {
        border: round $warning;
        border-subtitle-background: $warning-darken-3;
    }
    CandidateCard.-stale > Static {
        color: $text-disabled;
    }
    CandidateCard > .text {
        width: 1fr;
    }
    """

    class Clicked(Message):
        """The person clicked this card: it is picked as if its number was pressed."""

        def __init__(self, card: CandidateCard) -> None:
            super().__init__()
            self.card = card

    def __init__(self, number: int, text: str, label: str = "", cut: bool = False, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.number = number
        self.text = text
        self.label = label  # a model name when the session shows them, else ""
        self.cut = cut  # the token limit ended it, not the model: said under the text
        self.badge = ""
        self.score: float | None = None
        self._set_titles()

    def compose(self):
        yield Static(self._body(), classes="text", markup=False)

    def _body(self) -> str | Text:
        body = Text(printable(self.text)) if self.text.strip() else Text("(empty answer)", style="italic dim")
        if self.cut:
            body.append(f"{CUT}", style="italic dim")
        return body

    def set_candidate(self, text: str, label: str = "", cut: bool = False) -> None:
        """Show another answer in this card (cheaper than a new card when the next prompt comes)."""
        self.text, self.label, self.cut = text, label, cut
        self.query_one(Static).update(self._body())
        self.scroll_home(animate=False)
        self.show("", None)
        self._set_titles()

    def show(self, badge: str, score: float | None) -> None:
        """Its place in the ranking being made ('#2', '= tied #3' or '') and its reward score."""
        if (badge, score) == (self.badge, self.score):
            return
        self.badge, self.score = badge, score
        self.set_class(badge.startswith("#"), "-ranked")
        self.set_class(badge.startswith("="), "-tied")
        self._set_titles()

    def _set_titles(self) -> None:
        title = f" {self.number} "
        if self.label:
            title += f"· {escape(printable(self.label))} "
        self.border_title = title
        parts = [p for p in (self.badge, "" if self.score is None else f"reward {self.score:+.2f}") if p]
        self.border_subtitle = f" {'  ·  '.join(parts)} " if parts else ""

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.post_message(self.Clicked(self))
