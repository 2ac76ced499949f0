"""Append records to a project's dataset, one at a time, as a person makes them (the playground's pairs
and examples). Each record is checked and normalised as an import would (`kinds.normalise`), flushed and
fsynced before the call returns; the dataset is made and listed in the project on its first record.
"""

from __future__ import annotations

import json
import os
from typing import Any

from workbench import project as projects
from workbench.data import kinds


def append_record(project_name: str, dataset: str, kind: str, record: dict[str, Any], source: str) -> int:
    """Append `record` (of `kind`) to `dataset`; the dataset's records after it. RecordProblem when the
    record is not a good `kind` record; ProjectError when the dataset exists with another kind."""
    line = json.dumps(kinds.normalise(record, kind), ensure_ascii=False).encode("utf-8") + b"\n"
    project = projects.load(project_name)
    entry = next((d for d in project.datasets if d.name == dataset), None)
    if entry is not None and entry.kind != kind:
        raise projects.ProjectError(f"Dataset '{dataset}' holds {entry.kind} records, not {kind}: rename it "
                                    "to keep it, and the next record starts a new one.")
    path = project.path / "datasets" / f"{projects.validate_name(dataset)}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as f:
        if f.tell() > 0 and not _ends_a_line(path):
            f.write(b"\n")  # a crash cut the last line: keep it apart from this record
        f.write(line)
        f.flush()
        os.fsync(f.fileno())
    project = projects.load(project_name)  # as it is now
    entry = next((d for d in project.datasets if d.name == dataset), None)
    if entry is None:
        entry = projects.DatasetEntry(name=dataset, kind=kind, records=0, source=source, imported=projects.now_iso())
        project.datasets.append(entry)
    with open(path, "rb") as f:
        entry.records = sum(1 for line in f if line.strip())
    project.save()
    return entry.records


def _ends_a_line(path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"
