"""Tasks of the LM Evaluation Harness (`lm-eval`, optional) run inside an evaluation job.

A person who has `lm-eval` installed names tasks with `workbench eval ... --lm-eval TASK`: a task
defined in a YAML file of the project's `lm-eval/` folder (the harness's own format: `dataset_path:
json` and `dataset_kwargs.data_files` read local files, so nothing is fetched; relative paths are read
from the project's folder), the path of such a YAML file or of a folder of them, or one of the
harness's own tasks by name (those fetch their data from the hub the first time, so they need the
network or the hub's cache). Each task is scored for the base model and for the run (not for the
few-shot baseline: a task brings its own `num_fewshot`), on the model the job already loaded, and
its metrics join the subject's results as `lm_eval.<task> <metric>`. `--limit` scores the first N
documents of each task too.

Everything is checked before a job starts (`check`): the package, the files, each name found.
The project never needs the harness: without it, `--lm-eval` is refused in one line and nothing
else changes. Only `check` and `run` import it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from workbench import locations

FOLDER = "lm-eval"  # a project's task files
INSTALL = "pip install 'lm-eval>=0.4.5'"


class HarnessError(ValueError):
    """A task the harness cannot run; the message says why."""


def installed() -> bool:
    return importlib.util.find_spec("lm_eval") is not None


def task_folder(project: str) -> Path:
    return locations.project_dir(project) / FOLDER


def _yaml_files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        out.extend(sorted(path.rglob("*.yaml")) + sorted(path.rglob("*.yml")) if path.is_dir() else [path])
    return out


def check(project: str, names: list[str]) -> dict[str, Any]:
    """The job's harness settings for `names` (task names or YAML paths), each found: `tasks` (names),
    `include` (folders and files the harness reads task definitions from), `builtin` (whether one needs the
    harness's own tasks) and `digest` (of the task files: an edited task is taken again). HarnessError
    (one line) for a missing package, file or task."""
    if not names:
        return {}
    if not installed():
        raise HarnessError(f"--lm-eval needs the LM Evaluation Harness, which is not installed: {INSTALL}")
    include: list[Path] = [task_folder(project)] if task_folder(project).is_dir() else []
    tasks: list[str] = []
    for name in dict.fromkeys(n.strip() for n in names if n.strip()):
        path = Path(name).expanduser()
        if name.endswith((".yaml", ".yml")) or os.sep in name:
            if not path.exists():
                raise HarnessError(f"lm-eval task file {name} does not exist.")
            include.append(path.resolve())
            tasks.extend(_task_names(_yaml_files([path.resolve()])) or [path.stem])
        else:
            tasks.append(name)
    tasks = list(dict.fromkeys(tasks))
    local = _manager(include, defaults=False)
    missing = [t for t in tasks if not local.match_tasks([t])]
    builtin = bool(missing)
    if missing:
        found = _manager(include, defaults=True)
        unknown = [t for t in missing if not found.match_tasks([t])]
        if unknown:
            where = f" or in {task_folder(project)}" if include else \
                f" (put task YAML files in {task_folder(project)})"
            raise HarnessError(f"lm-eval has no task '{unknown[0]}' among its own{where}.")
    digest = hashlib.sha256()
    for path in _yaml_files(include):
        digest.update(str(path).encode() + b"\0" + path.read_bytes())
    return {"tasks": tasks, "include": [str(p) for p in include], "builtin": builtin,
            "digest": digest.hexdigest()[:16]}


def project_tasks(project: str) -> list[str]:
    """The task names the project's lm-eval/ folder defines (light: the files are read as text)."""
    folder = task_folder(project)
    return _task_names(_yaml_files([folder])) if folder.is_dir() else []


def _task_names(files: list[Path]) -> list[str]:
    """The `task:` names the YAML files define (read as lines: the harness's files carry tags a YAML
    loader refuses)."""
    names = []
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("task:"):
                names.append(line.split(":", 1)[1].strip().strip("'\""))
    return names


def _manager(include: list[Path], defaults: bool):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=[str(p) for p in include] or None, include_defaults=defaults)


@contextmanager
def _in(folder: Path):
    """Relative data paths of the task files are read from the project's folder."""
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def run(project: str, settings: dict[str, Any], model, tokenizer, batch_size: int, limit: int | None,
        device: str, check_stop: Callable[[], None], status: Callable[[str], None]) -> dict[str, Any]:
    """{"<task> <metric>": value} of every task in `settings` (from `check`) on a loaded model, a task at a time
    (a stop is seen between tasks); plus `_versions`, the tasks' versions and shots, for the results file."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    manager = _manager([Path(p) for p in settings["include"]], defaults=settings["builtin"])
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device)
    metrics: dict[str, Any] = {}
    versions: dict[str, Any] = {}
    for task in settings["tasks"]:
        check_stop()
        status(f"lm-eval: {task}")
        with _in(locations.project_dir(project)):
            out = lm_eval.simple_evaluate(model=lm, tasks=[task], task_manager=manager, limit=limit,
                                          log_samples=False, bootstrap_iters=0, verbosity="ERROR")
        if not out:
            continue
        for name, row in out["results"].items():
            for key, value in row.items():  # "acc,none": the metric, then the filter its answers went through
                metric, _, kept = key.partition(",")
                if not kept or metric.endswith("_stderr") or isinstance(value, bool) \
                        or not isinstance(value, (int, float)):
                    continue
                metrics[f"{name} {metric}" + ("" if kept == "none" else f" ({kept})")] = round(float(value), 6)
        versions.update({name: {"version": str(out["versions"].get(name, "")), "shots": out["n-shot"].get(name, 0)}
                         for name in out["results"]})
    return {"metrics": metrics, "tasks": versions}
