"""A histogram of token lengths as horizontal bars, sized to the widget's width.

Bins past the chosen max length are red (those records get cut), a bin that
straddles it is yellow.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(value: int, top: int, width: int) -> str:
    if top <= 0 or width <= 0:
        return ""
    cells = value / top * width
    full = int(cells)
    part = EIGHTHS[int((cells - full) * 8)] if full < width else ""
    return ("█" * full + part.strip()) or ("▏" if value else "")


class Histogram(Widget):
    """Call `show(bins, max_length)` with bins of `{"lo", "hi", "count"}`."""

    DEFAULT_CSS = """
    Histogram {
        height: auto;
        min-height: 1;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.bins: list[dict] = []
        self.max_length: int | None = None

    def show(self, bins: list[dict], max_length: int | None) -> None:
        self.bins = [b for b in bins if isinstance(b, dict)]
        self.max_length = max_length
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        return max(1, len(self.bins))

    def style_for(self, lo: int, hi: int) -> str:
        if self.max_length is None or hi <= self.max_length:
            return "green"
        return "red" if lo >= self.max_length else "yellow"

    def render(self) -> Text:
        if not self.bins:
            return Text("no token lengths yet", style="dim")
        labels = [str(b.get("lo", 0)) if b.get("lo") == b.get("hi") else f"{b.get('lo', 0)}–{b.get('hi', 0)}"
                  for b in self.bins]
        counts = [str(b.get("count", 0)) for b in self.bins]
        label_w, count_w = max(map(len, labels)), max(map(len, counts))
        width = max(1, self.size.width - label_w - count_w - 3)
        top = max(int(b.get("count", 0)) for b in self.bins)
        text = Text(no_wrap=True, overflow="crop")
        for i, (b, label, count) in enumerate(zip(self.bins, labels, counts)):
            if i:
                text.append("\n")
            text.append(label.rjust(label_w), style="dim")
            text.append(" ")
            text.append(bar(int(b.get("count", 0)), top, width).ljust(width),
                        style=self.style_for(int(b.get("lo", 0)), int(b.get("hi", 0))))
            text.append(" " + count.rjust(count_w))
        return text
