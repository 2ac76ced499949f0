"""A DataTable whose columns take the width there is: each fixed column as wide as its widest cell (a
number is never cut), the flexible ones sharing what is left, again at each resize."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable

MIN_FLEX = 8


def plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def shares(room: int, least: list[int], need: list[int] | None = None) -> list[int]:
    """`room` columns split among the flexible columns, none under its `least` width. With `need` (each
    column's widest cell), a column that needs less than an even share gets what it needs and leaves the
    rest to the others; what is left once every need is met is shared evenly."""
    count = len(least)
    need = need or [room] * count
    widths = [0] * count
    left, open_ = max(room, 0), sorted(range(count), key=lambda i: need[i])
    while open_:
        fair = left // len(open_)
        i = open_[0]
        if need[i] > fair:
            break
        widths[i] = need[i]
        left -= need[i]
        open_.pop(0)
    if open_:
        base, odd = divmod(left, len(open_))
        for k, i in enumerate(sorted(open_)):
            widths[i] = base + (1 if k < odd else 0)
    else:
        base, odd = divmod(left, count)
        widths = [w + base + (1 if i < odd else 0) for i, w in enumerate(widths)]
    return [max(w, low) for w, low in zip(widths, least)]


def is_number(text: str) -> bool:
    """A cell no column may cut: digits and signs, no word."""
    return any(c.isdigit() for c in text) and not any(c.isalpha() for c in text)


class FitTable(DataTable):
    """Call `fit()` after adding rows; a resize fits the columns again by itself."""

    def __init__(self, *, flexible: tuple[str, ...], by_need: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.flexible = flexible
        self.by_need = by_need  # flexible columns share by what they need, not evenly

    def on_resize(self) -> None:
        self.fit()

    def fit(self) -> None:
        if not self.columns or not self.size.width:
            return  # not laid out yet: the resize that comes with its layout fits it
        fixed, flex, least, need = {}, [], [], []
        for key, column in self.columns.items():
            cells = [plain(self.get_cell(row, key)) for row in self.rows]
            if key.value in self.flexible:
                flex.append(column)
                least.append(max([MIN_FLEX, *(cell_len(text) for text in cells if is_number(text))]))
                need.append(max([cell_len(column.label.plain), *(cell_len(text) for text in cells)]))
                continue
            fixed[key] = max([cell_len(column.label.plain), *(cell_len(text) for text in cells)])
        padding = 2 * self.cell_padding * len(self.columns)
        rows = self.row_count + (1 if self.show_header else 0)
        scrollbar = self.styles.scrollbar_size_vertical if rows > self.size.height else 0
        room = self.size.width - scrollbar - sum(fixed.values()) - padding
        for column in self.columns.values():
            column.auto_width = False
            column.width = fixed.get(column.key, 0)
        for column, width in zip(flex, shares(room, least, need if self.by_need else None) if flex else []):
            column.width = width
        self._require_update_dimensions = True  # the virtual size follows the new widths
        self.refresh()
