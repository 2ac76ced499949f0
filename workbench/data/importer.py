"""Import a file into a project: normalised records in `datasets/<name>.jsonl`, plus a report.

The file is read as a stream and the records are written as they come to a temporary file
that replaces the dataset only at the end, so a failed import leaves the old dataset whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Callable

from workbench import project as projects
from workbench.data import kinds
from workbench.data.import_report import ImportReport, Problem
from workbench.data.readers import open_source
from workbench.files import FILE_MODE

__all__ = ["ImportReport", "Problem", "dataset_name_for", "import_file", "read_records"]

Progress = Callable[[int, int], None]
PROGRESS_INTERVAL = 0.1  # seconds: at most ten calls a second


def dataset_name_for(path: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(path).stem).strip("-.") or "data"
    return name[:64]


def import_file(project_name: str, source: Path, name: str | None = None, split: str = "train",
                kind: str | None = None, dedupe: bool = False, progress: Progress | None = None) -> ImportReport:
    """Read `source`, keep every good record, report every bad one where a person finds it.

    `kind` forces one record kind instead of detecting it record by record; `dedupe` leaves out
    records identical to an earlier one (they are reported either way); `progress(done, total)`
    is called as the file is read, in bytes or records.
    """
    if kind is not None and kind not in kinds.KINDS:
        raise ValueError(f"unknown kind '{kind}' (known kinds: {', '.join(kinds.KINDS)})")
    project = projects.load(project_name)
    source = Path(source).expanduser()
    name = projects.validate_name(name or dataset_name_for(source))
    reader = open_source(source)
    report = ImportReport(source=str(source), dataset=name, duplicates_removed=dedupe)
    target = project.path / "datasets" / f"{name}.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    tick = _throttled(progress)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            _copy_records(reader, out, report, kind, dedupe, tick)
            out.flush()
            os.fsync(out.fileno())
        report.notes = reader.notes
        tick(reader.total, reader.total, True)
        if not report.imported:
            os.unlink(tmp)
            return report
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    project.datasets = [d for d in project.datasets if d.name != name]
    project.datasets.append(projects.DatasetEntry(
        name=name, kind=report.kinds.most_common(1)[0][0] if len(report.kinds) == 1 else "mixed",
        records=report.imported, source=str(source.resolve()), imported=projects.now_iso(), split=split))
    project.save()
    return report


def _copy_records(reader, out, report: ImportReport, kind: str | None, dedupe: bool, tick) -> None:
    seen: dict[bytes, str] = {}
    for row in reader.rows():
        tick(reader.done, reader.total)
        if row.problem:
            report.problems.append(Problem(row.line, row.problem, row.unit, row.section))
            continue
        try:
            record_kind = kind or kinds.detect(row.record)
            line = json.dumps(kinds.normalise(row.record, record_kind), ensure_ascii=False)
        except kinds.RecordProblem as exc:
            report.problems.append(Problem(row.line, str(exc), row.unit, row.section))
            continue
        key = hashlib.blake2b(line.encode("utf-8"), digest_size=16).digest()
        where = row.where
        first = seen.setdefault(key, where)
        if first is not where:
            report.note_duplicate(where, first)
            if dedupe:
                continue
        out.write(line + "\n")
        report.kinds[record_kind] += 1
        report.imported += 1


def _throttled(progress: Progress | None):
    last = [0.0]

    def tick(done: int, total: int, final: bool = False) -> None:
        now = time.monotonic()
        if progress is not None and (final or now - last[0] >= PROGRESS_INTERVAL):
            last[0] = now
            progress(done, total)

    return tick


def read_records(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
