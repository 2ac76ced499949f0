"""Read a data file into located rows (a record or a problem each), never stopping at a bad one.

Every format is read as a stream where it can be: `Source.done` and `Source.total` say how far the
reading has got (bytes or records), for a progress bar.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any, Iterator

from workbench.data import tables
from workbench.data.rows import MAX_RECORD_BYTES, Row, Source, UnsupportedFile, as_row, too_long

CONTAINER_KEYS = ("data", "records", "train", "examples", "rows", "items", "instances", "samples")
MAX_JSON_DOCUMENT_BYTES = 512 * 2**20  # a JSON document is parsed whole: Python takes several times its size
TOO_DEEP = "nested too deeply to read (lists or objects inside each other past Python's recursion limit)"


def open_source(path: Path) -> Source:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No such file: {path}")
    if path.is_dir():
        return tables.SavedDataset(path)
    _refuse_special(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return Jsonl(path)
    if suffix == ".json":
        return JsonDocument(path)
    if suffix in (".csv", ".tsv"):
        return tables.Delimited(path, "\t" if suffix == ".tsv" else ",")
    if suffix in (".parquet", ".pq"):
        return tables.Parquet(path)
    raise UnsupportedFile(f"{path.name}: unsupported file type '{suffix}' "
                          "(JSONL, JSON, CSV, TSV, Parquet or a folder saved with datasets.save_to_disk)")


SPECIAL_FILES = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                 (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"))


def _refuse_special(path: Path) -> None:
    """A device, pipe or socket (a symlink to /dev/zero...) has no end to read to: refused before reading."""
    mode = path.stat().st_mode
    for test, what in SPECIAL_FILES:
        if test(mode):
            target = f" (it points to {path.resolve()})" if path.is_symlink() else ""
            raise UnsupportedFile(f"{path.name} is {what}{target}, not a data file; give a file or a saved "
                                  "dataset folder")


def read_rows(path: Path) -> Iterator[Row]:
    yield from open_source(path).rows()


class Jsonl(Source):
    """One JSON object a line; a blank line is skipped, a UTF-8 byte-order mark is ignored.

    A line longer than MAX_RECORD_BYTES stops the reading with that problem: no line is read
    into memory past the limit."""

    def rows(self) -> Iterator[Row]:
        self.total = self.path.stat().st_size
        with open(self.path, "rb") as f:
            for number, raw in enumerate(iter(lambda: f.readline(MAX_RECORD_BYTES + 1), b""), start=1):
                self.done += len(raw)
                if len(raw) > MAX_RECORD_BYTES and not raw.endswith(b"\n"):
                    yield Row(number, problem=too_long())
                    return
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
                except RecursionError:
                    yield Row(number, problem=TOO_DEEP)
                    continue
                yield as_row(number, value, "line")


class JsonDocument(Source):
    """A JSON list of records, or an object holding that list under a key such as "data".

    The document is parsed whole (JSON has no record boundaries to stream on); each record is
    let go once it has been yielded. A .json file that is really JSON Lines is read as such.
    """

    unit = "record"

    def rows(self) -> Iterator[Row]:
        size = self.path.stat().st_size
        if size > MAX_JSON_DOCUMENT_BYTES:
            with open(self.path, "rb") as f:
                first = f.readline(MAX_RECORD_BYTES)
            try:
                lines = first.endswith(b"\n") and isinstance(json.loads(first.decode("utf-8-sig")), dict)
            except (UnicodeDecodeError, ValueError, RecursionError):
                lines = False
            if lines:  # a .json file that is really JSON Lines streams like one
                yield from self._as_jsonl()
                return
            yield Row(1, problem=f"a JSON document of {size / 2**20:,.0f} MB: it is parsed whole, and the most "
                      f"this reads whole is {MAX_JSON_DOCUMENT_BYTES // 2**20} MB; write it as JSON Lines (one "
                      "record a line, streamed: `jq -c '.[]' FILE.json > FILE.jsonl`) and import that")
            return
        raw = self.path.read_bytes()
        try:
            value = json.loads(raw.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            yield Row(raw.count(b"\n", 0, exc.start) + 1, problem=f"not UTF-8 text (byte {exc.start}); "
                      "nothing in this file could be read")
            return
        except RecursionError:
            yield Row(1, problem=f"{TOO_DEEP}; nothing in this file could be read")
            return
        except json.JSONDecodeError as exc:
            if exc.msg == "Extra data" and raw.lstrip()[:1] == b"{":
                yield from self._as_jsonl()
                return
            yield Row(exc.lineno, problem=f"not valid JSON ({exc.msg} at column {exc.colno}); "
                      "nothing in this file could be read")
            return
        del raw
        records = self._records(value)
        self.total = len(records)
        for index in range(len(records)):
            item, records[index] = records[index], None
            self.done = index + 1
            yield as_row(index + 1, item, "record")

    def _as_jsonl(self) -> Iterator[Row]:
        self.unit = "line"
        self.notes.append("read as JSON Lines (one object a line)")
        lines = Jsonl(self.path)
        for row in lines.rows():
            self.done, self.total = lines.done, lines.total
            yield row

    def _records(self, value: Any) -> list:
        if isinstance(value, list):
            return value
        if not isinstance(value, dict):
            return [value]
        from workbench.data import kinds

        for key in CONTAINER_KEYS:
            if isinstance(value.get(key), list):
                self.notes.append(f"records read from the list under '{key}'")
                return value[key]
        try:
            kinds.detect(value)
            return [value]
        except kinds.RecordProblem:
            pass
        lists = [k for k, v in value.items() if isinstance(v, list) and v and isinstance(v[0], dict)]
        if len(lists) == 1:
            self.notes.append(f"records read from the list under '{lists[0]}'")
            return value[lists[0]]
        return [value]
