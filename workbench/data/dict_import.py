"""A folder saved from a DatasetDict of several splits, imported one dataset per split.

Each split becomes the dataset `<name>-<split>`; test, validation, dev and the like become eval
sets (held out of training), every other split a training set. The splits are imported one by
one through the importer (each replaces its dataset only once it is whole); the report adds
them up, each problem located in its split, and notes any eval record that a training split
also holds.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from workbench import project as projects
from workbench.data.import_report import ImportReport
from workbench.data.naming import DatasetExists, dataset_name_for

EVAL_SPLITS = {"test", "testing", "validation", "valid", "val", "dev", "eval", "evaluation", "heldout", "held_out"}


def splits_of(path: Path) -> list[str]:
    """The splits of a folder saved from a DatasetDict, in their saved order ([] for any other path)."""
    index = Path(path) / "dataset_dict.json"
    if not index.is_file():
        return []
    try:
        splits = json.loads(index.read_text(encoding="utf-8")).get("splits")
    except (OSError, ValueError, AttributeError):
        return []  # the reader says what is wrong with the folder
    return [s for s in splits or [] if isinstance(s, str) and (Path(path) / s).is_dir()]


def split_role(split: str) -> str:
    """The project split a DatasetDict split becomes: "eval" for test/validation/dev..., else "train"."""
    return "eval" if split.lower() in EVAL_SPLITS else "train"


def import_splits(project_name: str, source: Path, splits: list[str], name: str | None, kind: str | None,
                  dedupe: bool, progress, replace: bool, import_file) -> ImportReport:
    """Each split through `import_file` (the importer of one source, passed in by it)."""
    base = name or dataset_name_for(source)
    names = {split: projects.validate_name(f"{base}-{split}") for split in splits}
    current = {d.name: d for d in projects.load(project_name).datasets}
    for dataset in names.values():
        if dataset in current and not replace:
            raise DatasetExists(project_name, dataset, current[dataset].records)
    sizes = _sizes(source, splits)
    total, offset = sum(sizes.values()), 0
    report = ImportReport(source=str(source), dataset="", duplicates_removed=dedupe)
    kept = []
    for split in splits:
        def tick(done: int, _total: int, start=offset) -> None:
            progress(start + done, total)

        part = import_file(project_name, source / split, name=names[split], split=split_role(split), kind=kind,
                           dedupe=dedupe, progress=tick if progress else None, replace=replace)
        offset += sizes[split]
        _add(report, part, split)
        role = split_role(split)
        report.notes.append(f"split '{split}' -> dataset '{names[split]}' ({role}): {part.imported} record(s)"
                            if part.imported else f"split '{split}': no usable record, no dataset made")
        if part.imported:
            kept.append(split)
    report.dataset = ", ".join(names[s] for s in kept)
    report.notes += _leaks(project_name, {s: names[s] for s in kept})
    return report


def _sizes(source: Path, splits: list[str]) -> dict[str, int]:
    """Rows per split, from the split's memory-mapped table (0 where it cannot be read: its import says why)."""
    from datasets import load_from_disk

    sizes = {}
    for split in splits:
        try:
            sizes[split] = load_from_disk(str(source / split)).num_rows
        except Exception:  # noqa: BLE001 - datasets raises several types for a damaged folder
            sizes[split] = 0
    return sizes


def _add(report: ImportReport, part: ImportReport, split: str) -> None:
    in_split = f" of split '{split}'"
    report.imported += part.imported
    report.kinds.update(part.kinds)
    for problem in part.problems:
        problem.section = problem.section or split
        report.problems.append(problem)
    report.duplicates += part.duplicates
    report.duplicate_examples += [(w + in_split, f + in_split) for w, f in part.duplicate_examples]
    report.notes += [f"{note} (split '{split}')" for note in part.notes]


def _leaks(project_name: str, datasets: dict[str, str]) -> list[str]:
    """A note for each eval split holding records that a training split holds too."""
    project = projects.load(project_name)
    digests = {split: _digests(project.dataset_path(name)) for split, name in datasets.items()}
    trained = set().union(*(d for s, d in digests.items() if split_role(s) == "train"))
    notes = []
    for split, found in digests.items():
        shared = sum(1 for digest in found if digest in trained) if split_role(split) == "eval" else 0
        if shared:
            notes.append(f"{shared} record(s) of eval split '{split}' are also in a training split: "
                         "they measure memory, not generalisation")
    return notes


def _digests(path: Path) -> list[bytes]:
    with open(path, "rb") as f:
        return [hashlib.blake2b(line.rstrip(b"\n"), digest_size=16).digest() for line in f if line.strip()]
