"""A project's runs side by side: method, the parameters that set them apart, losses, evaluation metrics.

One row for the base model, one per few-shot baseline taken, one per training run (jobs that
train nothing, such as evaluations and sampling sessions, are left out). The metrics are each
subject's latest evaluation (`results`), the losses a run's last logged ones; results on datasets
other than the eval split (`eval --dataset`) come after, one column per metric and datasets ("exact_match
on cited"), only when some row has them. `sort` orders the
rows by any column: metrics where higher is better (rates, rewards) from the best down, losses,
perplexities and times from the lowest up; rows without the value go last. Light: no model imports.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from workbench import locations
from workbench import project as projects
from workbench import registry
from workbench.evaluate import results
from workbench.evaluate.results import Subject
from workbench.jobs import store
from workbench.run import events as ev
from workbench.run import layout
from workbench.run.spec import JobSpec

FIXED = ["run", "method", "state", "steps", "train_loss", "eval_loss"]
ASCENDING = ("train_loss", "eval_loss", *results.LOWER_IS_BETTER)
TEXT = ("run", "method", "state")


@dataclass
class Row:
    run: str
    method: str
    state: str
    steps: int | None = None
    train_loss: float | None = None
    eval_loss: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def value(self, column: str) -> Any:
        if column in FIXED:
            return getattr(self, column)
        if column in self.params:
            return self.params[column]
        return self.metrics.get(column)


def losses(events: list[ev.Event]) -> tuple[float | None, float | None]:
    """(last train loss, last eval loss) a run logged."""
    train = [e.loss for e in events if isinstance(e, ev.Log) and e.loss is not None and math.isfinite(e.loss)]
    held = [e.loss for e in events if isinstance(e, ev.Eval) and e.loss is not None and math.isfinite(e.loss)]
    return (train[-1] if train else None), (held[-1] if held else None)


def few_shot_subjects(project: str, on: str = "") -> list[Subject]:
    """The few-shot baselines the project has results for (on the eval split, or on the datasets `on`), by k."""
    folder = layout.evaluations(locations.project_dir(project))
    pattern = re.compile(re.escape(f"{results.BASE}-") + r"(\d+)shot" + (re.escape(f"-{results.ON}{on}") if on else ""))
    found = []
    if folder.is_dir():
        for d in folder.iterdir():
            matched = pattern.fullmatch(d.name)
            if matched and (d / layout.EVAL_RESULTS).exists():
                found.append(Subject(shots=int(matched.group(1)), on=on))
    return sorted(found, key=lambda s: s.shots)


def figures(project: str, subject: Subject) -> dict[str, float]:
    """The subject's metrics on the eval split, then those of each other dataset it was evaluated on, named
    "<metric> on <datasets>" (`results.ELSEWHERE`)."""
    out = results.flat(results.read(project, subject))
    for on in results.elsewhere(project, subject):
        found = results.flat(results.read(project, replace(subject, on=on)))
        out.update({f"{name}{results.ELSEWHERE}{on}": value for name, value in found.items()})
    return out


def metric_of(column: str) -> str:
    """The metric a column shows, its datasets aside ("exact_match on cited" -> "exact_match")."""
    return column.partition(results.ELSEWHERE)[0]


def metric_columns(found: list[Row]) -> list[str]:
    """The metric columns, in reading order: the eval split's, then each other dataset's (by name); records left
    out."""
    names = list(dict.fromkeys(k for r in found for k in r.metrics))
    columns = results.order([n for n in names if results.ELSEWHERE not in n and n != "records"])
    for on in sorted({n.partition(results.ELSEWHERE)[2] for n in names if results.ELSEWHERE in n}):
        own = [metric_of(n) for n in names if n.partition(results.ELSEWHERE)[2] == on]
        columns += [f"{n}{results.ELSEWHERE}{on}" for n in results.order(own) if n != "records"]
    return columns


def training_runs(project: str) -> list[store.RunInfo]:
    return [r for r in store.list_runs(project) if registry.trains(r.method)]


def key_params(specs: dict[str, dict[str, Any]]) -> list[str]:
    """The parameters whose values differ between the runs (all of them when there is one run, `mode` first)."""
    names = list(dict.fromkeys(k for p in specs.values() for k in p))
    if len(specs) > 1:
        names = [k for k in names if len({repr(p.get(k)) for p in specs.values()}) > 1]
    else:
        names = [k for k in names if k in ("mode", "max_steps", "learning_rate", "lora_r", "beta")]
    return sorted(names, key=lambda k: (k != "mode", names.index(k)))


def rows(project: str) -> tuple[list[str], list[Row]]:
    """(the parameter columns, the rows)."""
    projects.load(project)  # a mistyped name is an error, not an empty table
    out = [Row(run=s.name, method="base", state="-", metrics=figures(project, s))
           for s in [Subject(), *few_shot_subjects(project)]]
    runs = training_runs(project)
    specs = {}
    for info in runs:
        try:
            specs[info.id] = JobSpec.load(info.path).params
        except (OSError, KeyError, ValueError):
            specs[info.id] = {}
    keys = key_params(specs)
    for info in runs:
        train, held = losses(info.events)
        out.append(Row(run=info.id, method=info.method, state=info.state, steps=info.step, train_loss=train,
                       eval_loss=held, params={k: specs[info.id].get(k) for k in keys},
                       metrics=figures(project, Subject(run=info.id))))
    return keys, out


def sort(found: list[Row], column: str, columns: list[str]) -> list[Row]:
    if column not in columns:
        raise ValueError(f"Cannot sort by '{column}': the columns are {', '.join(columns)}.")
    present = [r for r in found if r.value(column) is not None]
    missing = [r for r in found if r.value(column) is None]
    if column in TEXT or not all(isinstance(r.value(column), (int, float)) for r in present):
        ordered = sorted(present, key=lambda r: str(r.value(column)))
    else:
        ordered = sorted(present, key=lambda r: r.value(column), reverse=metric_of(column) not in ASCENDING)
    return ordered + missing


def table(project: str, sort_by: str | None = None) -> list[list[str]]:
    """Header and rows of the comparison, as text cells; the header names are what `sort_by` takes."""
    return table_of(*rows(project), sort_by)


def table_of(keys: list[str], found: list[Row], sort_by: str | None = None) -> list[list[str]]:
    """The table of `rows`' result, in the order given unless `sort_by` names a column."""
    metric_names = metric_columns(found)
    columns = FIXED[:4] + keys + FIXED[4:] + metric_names
    if sort_by:
        found = sort(found, sort_by, columns)
    body = []
    for r in found:
        cells = [r.run, r.method, r.state, "-" if r.steps is None else str(r.steps)]
        cells += ["-" if r.params.get(k) is None else str(r.params[k]) for k in keys]
        cells += [results.fmt("loss", r.train_loss), results.fmt("loss", r.eval_loss)]
        cells += [results.fmt(metric_of(m), r.metrics.get(m)) for m in metric_names]
        body.append(cells)
    return [columns] + body


COMPARE_FILE = "compare.md"  # `workbench compare --out` without a path, and the screen's `w`: in the project folder


def markdown(project: str, cells: list[list[str]], sorted_by: str = "") -> str:
    """The comparison as a Markdown document: a heading, how it is ordered, the table."""
    from datetime import datetime

    when = datetime.now().strftime("%Y-%m-%d %H:%M")
    order = f", by {sorted_by}" if sorted_by else ""
    body = [[cell.replace("|", "\\|") for cell in line] for line in cells]
    return (f"# Runs of {project}\n\n{len(cells) - 1} rows{order}, {when}. The losses are each run's last logged; "
            f"the metrics each one's latest evaluation.\n\n{results.render(body, markdown=True)}\n")


def write(project: str, text: str, out: Path | None = None) -> Path:
    """Write `markdown`'s text (default: compare.md in the project folder); its path."""
    from workbench.files import write_atomic

    path = Path(out).expanduser() if out else locations.project_dir(project) / COMPARE_FILE
    write_atomic(path, text)
    return path
