"""Import a file into a project: normalised records in `datasets/<name>.jsonl`, plus a report.

The file is read as a stream and the records are written as they come to a temporary file
that replaces the dataset only at the end, so a failed import leaves the old dataset whole.
An existing dataset is replaced only when asked (`replace=True`). The temporary file goes
however the import ends: an error, Ctrl-C, SIGTERM or SIGHUP; one left by a killed import
(SIGKILL, the OOM killer) is removed by the next import into the project.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil

from workbench import project as projects
from workbench.data import kinds
from workbench.data.dict_import import import_splits, splits_of
from workbench.data.import_report import ImportReport, Problem
from workbench.data.naming import DatasetExists, dataset_name_for
from workbench.data.readers import open_source
from workbench.files import FILE_MODE

__all__ = ["DatasetExists", "ImportReport", "Problem", "dataset_name_for", "import_file", "read_records"]

Progress = Callable[[int, int], None]
PROGRESS_INTERVAL = 0.1  # seconds: at most ten calls a second
TMP_SUFFIX = ".tmp"


def existing(project_name: str, name: str) -> projects.DatasetEntry | None:
    """The project's dataset called `name`, if it has one (what an import under that name would replace)."""
    return next((d for d in projects.load(project_name).datasets if d.name == name), None)


def import_file(project_name: str, source: Path, name: str | None = None, split: str = "train",
                kind: str | None = None, dedupe: bool = False, progress: Progress | None = None,
                replace: bool = False) -> ImportReport:
    """Read `source`, keep every good record, report every bad one where a person finds it.

    `kind` forces one record kind instead of detecting it record by record; `dedupe` leaves out
    records identical to an earlier one (they are reported either way); `progress(done, total)`
    is called as the file is read, in bytes or records. A dataset of the same name is replaced
    only with `replace` (else DatasetExists), and only once the new records are all written.
    A DatasetDict folder of several splits becomes one dataset per split (`dict_import`).
    """
    if kind is not None and kind not in kinds.KINDS:
        raise ValueError(f"unknown kind '{kind}' (known kinds: {', '.join(kinds.KINDS)})")
    project = projects.load(project_name)
    source = Path(source).expanduser()
    splits = splits_of(source) if source.is_dir() else []
    if len(splits) > 1:  # a DatasetDict: one dataset per split
        return import_splits(project_name, source, splits, name, kind, dedupe, progress, replace, import_file)
    name = projects.validate_name(name or dataset_name_for(source))
    previous = next((d for d in project.datasets if d.name == name), None)
    if previous is not None and not replace:
        raise DatasetExists(project_name, name, previous.records)
    reader = open_source(source)
    report = ImportReport(source=str(source), dataset=name, duplicates_removed=dedupe)
    target = project.path / "datasets" / f"{name}.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target.parent)
    tick = _throttled(progress)
    tmp = ""
    try:
        with _signals_raise():
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.{os.getpid()}.",
                                       suffix=TMP_SUFFIX)
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
    except BaseException as exc:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, Terminated):
            exc.resend()
        raise
    project = projects.load(project_name)  # as it is now: another dataset may have come meanwhile
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


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived during an import (a BaseException, as KeyboardInterrupt is)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum

    def resend(self) -> None:
        """End the process by the signal that stopped the import, as it would have without cleaning up."""
        signal.signal(self.signum, signal.SIG_DFL)
        os.kill(os.getpid(), self.signum)


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGTERM and SIGHUP raise Terminated inside the block (where they would kill the process at
    once), so the import cleans up on its way out; handlers already set are left alone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum, frame):
        raise Terminated(signum)

    changed = {}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            changed[signum] = signal.signal(signum, raise_terminated)
    try:
        yield
    finally:
        for signum, handler in changed.items():
            signal.signal(signum, handler)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporary files of imports whose process is gone (killed before it could clean up)."""
    removed = []
    for path in Path(folder).glob(f".*{TMP_SUFFIX}"):
        parts = path.name.split(".")
        pid = parts[-3] if len(parts) >= 4 else ""
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


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
