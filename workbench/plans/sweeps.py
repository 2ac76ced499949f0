"""Sweeps: one method trained at every point of a small grid of parameter values, then compared.

A sweep is a plan (see `pipelines`) whose stages are independent runs from the same
starting model, run by the same runner: one at a time, or one per GPU when several are
visible. The report reads each run's events (light: the UI shows it too).
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.params import ParamError
from workbench.plans import pipelines
from workbench.run import events as ev

MAX_POINTS = 64


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """`["learning_rate=1e-4,5e-4", "lora_r=8,16"]` -> {name: values}, in the order given."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParamError(f"--grid '{item}' is not KEY=VALUE,VALUE,...")
        if key in grid:
            raise ParamError(f"--grid names '{key}' twice; list all its values in one --grid.")
        chosen = [v.strip() for v in values.split(",")]
        if not all(chosen):
            raise ParamError(f"--grid '{item}' has an empty value.")
        if len(set(chosen)) != len(chosen):
            raise ParamError(f"--grid '{item}' repeats a value.")
        grid[key] = chosen
    if not grid:
        raise ParamError("A sweep needs at least one --grid KEY=VALUE,VALUE,...")
    return grid


def points(grid: dict[str, list]) -> list[dict[str, Any]]:
    """The cartesian product, the last parameter varying fastest."""
    return [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]


def make_plan(project_name: str, method: str, grid: dict[str, list], fixed: dict[str, Any] | None = None,
              datasets: list[str] | None = None, base: str = "", parallel: int = 1) -> pipelines.Plan:
    """Every point checked as `make_spec` would check it, before any run starts."""
    fixed = dict(fixed or {})
    both = sorted(set(grid) & set(fixed))
    if both:
        raise ParamError(f"{', '.join(both)} is both swept (--grid) and fixed (--set); keep one.")
    if parallel < 1:
        raise ParamError(f"--parallel must be 1 or more, not {parallel}.")
    grid_points = points(grid)
    if len(grid_points) > MAX_POINTS:
        raise ParamError(f"The grid makes {len(grid_points)} runs; a sweep runs at most {MAX_POINTS}.")
    stages = [pipelines.Stage(method=method, values={**fixed, **point}, datasets=list(datasets or []),
                              base=base or pipelines.BASE) for point in grid_points]
    pipelines.check(project_name, stages, names=[f"Sweep point {describe_point(p)}" for p in grid_points])
    label = "sweep-" + method
    return pipelines.Plan(id=pipelines.new_plan_id(project_name, label), project=project_name, kind="sweep",
                          name=f"{method} over {' x '.join(grid)}", stages=stages, parallel=parallel,
                          grid={k: list(v) for k, v in grid.items()})


def describe_point(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())


# GPUs ------------------------------------------------------------------------------


def visible_gpus(env: dict[str, str] | None = None) -> list[str]:
    """The GPU ids this process may hand out: CUDA_VISIBLE_DEVICES when set, else what NVML sees."""
    env = os.environ if env is None else env
    if "CUDA_VISIBLE_DEVICES" in env:
        out = []
        for item in env["CUDA_VISIBLE_DEVICES"].split(","):
            item = item.strip()
            if not item or item == "-1":
                break  # CUDA stops reading the list at the first invalid entry
            out.append(item)
        return out
    from workbench import telemetry

    return [str(gpu.index) for gpu in telemetry.snapshot().gpus]


def gpu_slots(parallel: int, visible: list[str]) -> list[str | None]:
    """One slot per run allowed at a time: a GPU id each when more than one run shares the machine.

    A single slot (parallel 1, or no GPU) leaves CUDA_VISIBLE_DEVICES alone, as a plain run would."""
    if parallel <= 1 or not visible:
        return [None]
    return list(visible[:parallel])


def describe_slots(slots: list[str | None], parallel: int) -> str:
    if slots == [None]:
        return f"No GPU visible: the runs go one at a time (asked for {parallel} at a time)."
    few = f" (asked for {parallel}; {len(slots)} GPUs visible)" if len(slots) < parallel else ""
    return f"{len(slots)} runs at a time, one GPU each: {', '.join(s or '' for s in slots)}{few}."


# the report ------------------------------------------------------------------------


@dataclass
class Row:
    """One run of a sweep, as the comparison table shows it."""

    index: int
    point: dict[str, Any]
    state: str
    run_id: str = ""
    step: int = 0
    total_steps: int = 0
    train_loss: float | None = None
    eval_loss: float | None = None  # the last eval
    best_eval_loss: float | None = None
    seconds_per_step: float | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def figures(events: list[ev.Event]) -> dict[str, Any]:
    """Final train loss, last and best eval loss, and seconds per step of the latest life."""
    out: dict[str, Any] = {"train_loss": None, "eval_loss": None, "best_eval_loss": None, "seconds_per_step": None}
    evals = [e.loss for e in events if isinstance(e, ev.Eval) and e.loss is not None and math.isfinite(e.loss)]
    if evals:
        out["eval_loss"], out["best_eval_loss"] = evals[-1], min(evals)
    losses = [e.loss for e in events if isinstance(e, ev.Log) and e.loss is not None]
    if losses:
        out["train_loss"] = losses[-1]
    begin, logs = None, []
    for event in events:
        if isinstance(event, ev.TrainBegin):
            begin, logs = event, []  # a resumed life starts its clock again
        elif isinstance(event, ev.Log):
            logs.append(event)
    if begin is not None and logs:
        first_step = min(log.step for log in logs) - 1
        steps = logs[-1].step - first_step
        if steps > 0 and logs[-1].time > begin.time:
            out["seconds_per_step"] = (logs[-1].time - begin.time) / steps
    return out


@dataclass
class Report:
    info: pipelines.PlanInfo
    rows: list[Row] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        return list(self.info.plan.grid)

    def to_dict(self) -> dict[str, Any]:
        return {"sweep": self.info.id, "state": self.info.state, "message": self.info.message,
                "grid": self.info.plan.grid, "rows": [r.to_dict() for r in self.rows]}


def report(project_name: str, sweep_id: str) -> Report:
    """One row per run, sorted by final eval loss (runs without one last, in grid order)."""
    info = pipelines.status(project_name, sweep_id)
    if info.plan.kind != "sweep":
        raise pipelines.PipelineError(f"'{sweep_id}' is a pipeline run, not a sweep: see `workbench pipeline status`.")
    rows = []
    for stage in info.stages:
        row = Row(index=stage.index, point=info.plan.point(stage.index), state=stage.state, run_id=stage.run_id,
                  message=stage.message)
        if stage.run is not None:
            row.step, row.total_steps = stage.run.step, stage.run.total_steps
            for key, value in figures(stage.run.events).items():
                setattr(row, key, value)
        rows.append(row)
    rows.sort(key=lambda r: (r.eval_loss is None, r.eval_loss if r.eval_loss is not None else 0.0, r.index))
    return Report(info=info, rows=rows)


def fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def header(keys: list[str]) -> list[str]:
    return keys + ["state", "steps", "train loss", "eval loss", "best eval", "s/step", "run"]


def table(rep: Report) -> list[list[str]]:
    """Header and rows of the comparison, as text cells (the CLI and the sweep screen show the same)."""
    body = [[str(r.point.get(k)) for k in rep.keys] +
            [r.state, f"{r.step}/{r.total_steps}" if r.total_steps else str(r.step), fmt(r.train_loss),
             fmt(r.eval_loss), fmt(r.best_eval_loss), fmt(r.seconds_per_step, 3), r.run_id or "-"]
            for r in rep.rows]
    return [header(rep.keys)] + body
