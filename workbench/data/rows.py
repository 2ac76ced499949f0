"""What every reader yields: located rows, each a record or the problem that stopped it, and the
`Source` a reader of one file format is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

# The most one line or record may take: a file with no line ends (a symlink to /dev/zero, a binary
# file named .jsonl) is stopped here instead of being read into memory whole.
MAX_RECORD_BYTES = 8 * 2**20


def too_long(what: str = "") -> str:
    """The problem that stops a reader at an over-long line, record or cell (`what` names it)."""
    subject = f"{what} " if what else ""
    return (f"{subject}longer than {MAX_RECORD_BYTES // 2**20} MB, the most one record may take; "
            "reading stopped here (is this really a text data file?)")


@dataclass
class Row:
    line: int
    record: dict[str, Any] | None = None
    problem: str | None = None
    unit: str = "line"
    section: str = ""

    @property
    def where(self) -> str:
        """Where a person finds it: "line 3", "record 3", "row 3", "row 3 of split 'test'"."""
        return f"{self.unit} {self.line}" + (f" of split '{self.section}'" if self.section else "")


class UnsupportedFile(ValueError):
    """The file cannot be read at all: unknown type, or not the format its name says."""


class Source:
    unit = "line"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done = 0
        self.total = 0
        self.notes: list[str] = []

    def rows(self) -> Iterator[Row]:
        raise NotImplementedError


def as_row(number: int, value: Any, unit: str) -> Row:
    if not isinstance(value, dict):
        return Row(number, problem=f"expected a JSON object, found {type(value).__name__}", unit=unit)
    return Row(number, record=value, unit=unit)
