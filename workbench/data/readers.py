"""Read a data file into (line number, record or problem) pairs, never stopping at a bad line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator


@dataclass
class Row:
    line: int
    record: dict[str, Any] | None = None
    problem: str | None = None


class UnsupportedFile(ValueError):
    pass


def read_rows(path: Path) -> Iterator[Row]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No such file: {path}")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        yield from _jsonl(path)
    else:
        raise UnsupportedFile(f"{path.name}: unsupported file type '{suffix}' (JSONL is supported).")


def _jsonl(path: Path) -> Iterator[Row]:
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield Row(number, problem=f"not UTF-8 text (byte {exc.start})")
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                yield Row(number, problem=f"not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(value, dict):
                yield Row(number, problem=f"expected a JSON object, found {type(value).__name__}")
                continue
            yield Row(number, record=value)
