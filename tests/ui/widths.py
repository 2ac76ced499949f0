"""Whether a table shows each number whole: a column narrower than a number in it hides digits."""

from __future__ import annotations

import re

from rich.cells import cell_len
from rich.text import Text
from textual.screen import Screen
from textual.widgets import DataTable

NUMBER = re.compile(r"[-+]?\d[\d,.:/%]*( ?(s|GiB|MiB|tokens?))?")


def plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def hidden_numbers(screen: Screen) -> list[str]:
    """`table.column: 'cell' in width N` for each number wider than its column, in every table of `screen`."""
    found = []
    for table in screen.query(DataTable):
        for column in table.ordered_columns:
            width = column.content_width if column.auto_width else column.width
            for row_key in table.rows:
                text = plain(table.get_cell(row_key, column.key)).strip()
                if NUMBER.fullmatch(text) and cell_len(text) > width:
                    found.append(f"{table.id}.{column.key.value}: {text!r} in width {width}")
    return found
