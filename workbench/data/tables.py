"""Tabular sources: CSV and TSV, Parquet, and folders saved with `datasets.save_to_disk`.

pyarrow and datasets are imported only when such a file is read. Rows are numbered as a person
sees them: in CSV/TSV the header is row 1, as in a spreadsheet; in Parquet and saved datasets the
first record is row 1. Empty cells and nulls count as absent fields.
"""

from __future__ import annotations

import csv
import json
from typing import IO, Any, Iterator

from workbench.data.rows import MAX_RECORD_BYTES, Row, Source, UnsupportedFile, too_long

BATCH = 1024


def _cell(value: str) -> Any:
    """A cell holding a JSON list or object (messages, completions, scores) is read as one."""
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            pass
    return value


# An empty cell in one of these columns is a missing answer, not a prompt-only record.
ANSWER_COLUMNS = {"completion", "chosen", "rejected", "completions", "responses"}


def _present(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if v is not None or k in ANSWER_COLUMNS}


class Delimited(Source):
    unit = "row"

    def __init__(self, path, delimiter: str) -> None:
        super().__init__(path)
        self.delimiter = delimiter

    def rows(self) -> Iterator[Row]:
        csv.field_size_limit(MAX_RECORD_BYTES)
        self.total = self.path.stat().st_size
        with open(self.path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
            reader = csv.reader(_bounded_lines(f), delimiter=self.delimiter)
            number = 0  # the last row read; the header is row 1
            try:
                header = [name.strip() for name in next(reader, [])]
                if not header:
                    return
                if not _is_utf8(header):
                    yield Row(1, problem="the header row is not UTF-8 text; nothing could be read", unit="row")
                    return
                number = 1
                for number, cells in enumerate(reader, start=2):
                    self.done = f.buffer.tell()
                    if not any(cell.strip() for cell in cells):
                        continue
                    yield self._row(number, header, cells)
            except LineTooLong:
                yield Row(number + 1, problem=too_long("a line"), unit="row")
            except csv.Error as exc:
                problem = too_long("a cell") if str(exc).startswith("field larger than field limit") else \
                    f"not valid {self._name()} ({exc}); reading stopped here"
                yield Row(number + 1, problem=problem, unit="row")
        self.done = self.total

    def _row(self, number: int, header: list[str], cells: list[str]) -> Row:
        if not _is_utf8(cells):
            return Row(number, problem="not UTF-8 text", unit="row")
        if len(cells) != len(header):
            return Row(number, problem=f"{len(cells)} cells, but the header row names {len(header)} columns",
                       unit="row")
        return Row(number, record={k: _cell(v) for k, v in zip(header, cells) if v != ""}, unit="row")

    def _name(self) -> str:
        return "TSV" if self.delimiter == "\t" else "CSV"


class LineTooLong(Exception):
    """A line of a delimited file reached MAX_RECORD_BYTES without ending."""


def _bounded_lines(f: IO[str]) -> Iterator[str]:
    """The lines of `f`, none read past MAX_RECORD_BYTES characters (each at least a byte)."""
    while line := f.readline(MAX_RECORD_BYTES + 1):
        if len(line) > MAX_RECORD_BYTES and not line.endswith(("\n", "\r")):
            raise LineTooLong
        yield line


def _is_utf8(cells: list[str]) -> bool:
    try:
        "".join(cells).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Parquet(Source):
    unit = "row"

    def rows(self) -> Iterator[Row]:
        import pyarrow.parquet as pq

        try:
            table = pq.ParquetFile(self.path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a damaged file
            raise UnsupportedFile(f"{self.path.name}: not a readable Parquet file ({exc})") from None
        self.total = table.metadata.num_rows
        number = 0
        for batch in table.iter_batches(batch_size=BATCH):
            for record in batch.to_pylist():
                number += 1
                self.done = number
                yield Row(number, record=_present(record), unit="row")


class SavedDataset(Source):
    """A Dataset or DatasetDict folder; every split of a DatasetDict is read, each row located in it."""

    unit = "row"

    def rows(self) -> Iterator[Row]:
        if not any((self.path / name).exists() for name in ("dataset_dict.json", "state.json")):
            raise UnsupportedFile(f"{self.path.name}: a folder, but not one saved with datasets.save_to_disk")
        from datasets import DatasetDict, load_from_disk

        try:
            loaded = load_from_disk(str(self.path))
        except Exception as exc:  # noqa: BLE001 - datasets raises several types for a damaged folder
            raise UnsupportedFile(f"{self.path.name}: not a readable saved dataset ({exc})") from None
        parts = list(loaded.items()) if isinstance(loaded, DatasetDict) else [("", loaded)]
        self.total = sum(len(part) for _, part in parts)
        if len(parts) > 1 or parts[0][0]:
            self.notes.append("splits: " + ", ".join(f"{name} {len(part)} row(s)" for name, part in parts)
                              + " (import FOLDER/<split> to keep one split apart)")
        for name, part in parts:
            for start in range(0, len(part), BATCH):
                batch = part[start:start + BATCH]
                columns = list(batch)
                for offset in range(len(batch[columns[0]]) if columns else 0):
                    self.done += 1
                    record = _present({c: batch[c][offset] for c in columns})
                    yield Row(start + offset + 1, record=record, unit="row", section=name)
