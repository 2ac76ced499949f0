"""Hold out part of a dataset for evaluation: a seeded sample moves to `<name>-eval`.

The held-out records keep their order; the rest stay in the dataset (split "train").
Both files are written before `project.toml` records the split, so a crash leaves at
worst an unregistered file, never a dataset whose count disagrees with its file.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from workbench import project as projects
from workbench.files import write_atomic


class SplitError(ValueError):
    """A split that cannot be made as asked."""


@dataclass
class SplitResult:
    train: str
    eval: str
    train_records: int
    eval_records: int

    def __str__(self) -> str:
        return (f"'{self.train}': {self.train_records} record(s) for training; "
                f"'{self.eval}': {self.eval_records} record(s) held out for evaluation.")


def eval_count(total: int, fraction: float | None, count: int | None) -> int:
    if (fraction is None) == (count is None):
        raise SplitError("Give either an eval fraction or an eval count.")
    if fraction is not None:
        if not 0 < fraction < 1:
            raise SplitError(f"The eval fraction should lie between 0 and 1, not {fraction}.")
        count = max(1, round(total * fraction))
    if count < 1 or count >= total:
        raise SplitError(f"Cannot hold out {count} of {total} record(s): keep at least one on each side.")
    return count


def split(project_name: str, dataset: str, fraction: float | None = None, count: int | None = None,
          seed: int = 42) -> SplitResult:
    project = projects.load(project_name)
    entry = project.dataset(dataset)
    if entry.split != "train":
        raise SplitError(f"Dataset '{dataset}' is already an eval split.")
    eval_name = projects.validate_name(f"{dataset}-eval")
    if any(d.name == eval_name for d in project.datasets):
        raise SplitError(f"Project '{project_name}' already has a dataset '{eval_name}'.")
    path = project.dataset_path(dataset)
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    n_eval = eval_count(len(lines), fraction, count)
    held = set(random.Random(seed).sample(range(len(lines)), n_eval))
    kept = [line for i, line in enumerate(lines) if i not in held]
    taken = [line for i, line in enumerate(lines) if i in held]
    write_atomic(project.path / "datasets" / f"{eval_name}.jsonl", "".join(t + "\n" for t in taken))
    write_atomic(path, "".join(k + "\n" for k in kept))
    entry.records = len(kept)
    project.datasets.append(projects.DatasetEntry(
        name=eval_name, kind=_kind(taken, entry.kind), records=len(taken),
        source=f"{entry.source} (held out of '{dataset}', seed {seed})", imported=projects.now_iso(), split="eval"))
    project.save()
    return SplitResult(train=dataset, eval=eval_name, train_records=len(kept), eval_records=len(taken))


def _kind(lines: list[str], fallback: str) -> str:
    """The held-out part's kind: the dataset's own, unless it is mixed and the sample is not."""
    if fallback != "mixed":
        return fallback
    from workbench.data.kinds import detect

    found = {detect(json.loads(line)) for line in lines}
    return found.pop() if len(found) == 1 else "mixed"
