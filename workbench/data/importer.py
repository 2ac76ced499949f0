"""Import a file into a project: normalised records in `datasets/<name>.jsonl`, plus a report."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from workbench import project as projects
from workbench.data import kinds
from workbench.data.readers import read_rows
from workbench.files import write_atomic


@dataclass
class Problem:
    line: int
    reason: str


@dataclass
class ImportReport:
    source: str
    dataset: str
    imported: int = 0
    kinds: Counter = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)

    def lines(self, limit: int = 20) -> list[str]:
        kinds_text = ", ".join(f"{n} {k}" for k, n in self.kinds.most_common()) or "none"
        out = [f"{self.source}: imported {self.imported} record(s) into '{self.dataset}' ({kinds_text}); "
               f"{len(self.problems)} problem(s)."]
        for p in self.problems[:limit]:
            out.append(f"  line {p.line}: {p.reason}")
        if len(self.problems) > limit:
            out.append(f"  ... and {len(self.problems) - limit} more")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def dataset_name_for(path: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(path).stem).strip("-.") or "data"
    return name[:64]


def import_file(project_name: str, source: Path, name: str | None = None, split: str = "train",
                kind: str | None = None) -> ImportReport:
    """Read `source`, keep every good record, report every bad one with its line number."""
    project = projects.load(project_name)
    source = Path(source).expanduser()
    name = projects.validate_name(name or dataset_name_for(source))
    report = ImportReport(source=str(source), dataset=name)
    records = []
    for row in read_rows(source):
        if row.problem:
            report.problems.append(Problem(row.line, row.problem))
            continue
        try:
            record_kind = kind or kinds.detect(row.record)
            records.append(kinds.normalise(row.record, record_kind))
        except kinds.RecordProblem as exc:
            report.problems.append(Problem(row.line, str(exc)))
            continue
        report.kinds[record_kind] += 1
    report.imported = len(records)
    if not records:
        return report
    dominant = report.kinds.most_common(1)[0][0]
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    write_atomic(project.path / "datasets" / f"{name}.jsonl", text)
    project.datasets = [d for d in project.datasets if d.name != name]
    project.datasets.append(projects.DatasetEntry(
        name=name, kind=dominant if len(report.kinds) == 1 else "mixed", records=len(records),
        source=str(source.resolve()), imported=projects.now_iso(), split=split))
    project.save()
    return report


def read_records(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
