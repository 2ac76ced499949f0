"""Pipelines: named lists of stages that train one after another, each from the previous one's model.

A pipeline is defined once in its project (`pipelines/<name>.toml`) and checked up front
with the checks `launch.make_spec` makes (method, parameters, dataset kinds, starting
model), so that a mistake in stage 3 shows before stage 1 has trained for an hour.

Running one writes a plan into `pipeline-runs/<id>/` and starts one runner process
(`workbench.plans.runner`) that launches the stages and appends what it does to
that folder's `events.jsonl`. A sweep (`workbench.plans.sweeps`) is a plan of the same shape
whose stages are independent. State is derived from those files and from each stage's run,
never stored. Light: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from workbench import locations, registry
from workbench import params as params_mod
from workbench import project as projects
from workbench.files import read_toml, write_toml
from workbench.jobs import store
from workbench.run import events as ev
from workbench.run import layout, liveness

SYNTAX = "METHOD[:KEY=VALUE,...][@DATASET[+DATASET...]]"
PREVIOUS, BASE = "previous", "base"
PLAN_FILE = layout.PLAN


class PipelineError(ValueError):
    """A pipeline a person must fix; the message names the stage."""


# stages and their syntax -------------------------------------------------------------


@dataclass
class Stage:
    method: str
    values: dict[str, Any] = field(default_factory=dict)  # parameter values as given (checked, not coerced)
    datasets: list[str] = field(default_factory=list)  # empty: the project's train (and eval) datasets
    base: str = ""  # previous | base | a model reference; empty: base for the first stage, previous after

    def base_for(self, index: int) -> str:
        return self.base or (BASE if index == 0 else PREVIOUS)

    def to_text(self) -> str:
        """The stage in the syntax `parse_stage` reads."""
        pairs = [f"{k}={v}" for k, v in self.values.items()] + ([f"base={self.base}"] if self.base else [])
        return self.method + (":" + ",".join(pairs) if pairs else "") + \
            ("@" + "+".join(self.datasets) if self.datasets else "")


def parse_stage(text: str, number: int = 1) -> Stage:
    """`sft:max_steps=50,mode=lora@chat` -> Stage; `base=` names the starting model.

    A comma-separated piece without `=` continues the previous value, so that
    `target_modules=q_proj,v_proj` keeps both names."""
    where = f"Stage {number} ('{text}')"
    body, at, data = text.strip().rpartition("@") if "@" in text else (text.strip(), "", "")
    method, _, assignments = body.partition(":")
    method = method.strip()
    if not method:
        raise PipelineError(f"{where} names no method: write {SYNTAX}.")
    datasets = [d.strip() for d in data.split("+")] if at else []
    if at and not all(datasets):
        raise PipelineError(f"{where}: '@' must be followed by dataset names joined with '+'.")
    values: dict[str, str] = {}
    last = None
    for piece in assignments.split(",") if assignments.strip() else []:
        key, eq, value = piece.partition("=")
        if not eq:
            if last is None:
                raise PipelineError(f"{where}: '{piece}' is not KEY=VALUE.")
            values[last] += "," + piece
            continue
        key = key.strip()
        if not key:
            raise PipelineError(f"{where}: '{piece}' has no parameter name before '='.")
        if key in values:
            raise PipelineError(f"{where} sets '{key}' twice.")
        values[key], last = value.strip(), key
    base = values.pop("base", "")
    return Stage(method=method, values=values, datasets=datasets, base=base)


def check_stage(project: projects.Project, stage: Stage, index: int, previous: Stage | None = None,
                where: str = "") -> None:
    """The checks `launch.make_spec` makes, with the stage named (`where`) in every message."""
    where = where or f"Stage {index + 1} ({stage.method})"
    try:
        method = registry.get(stage.method)
    except registry.UnknownMethod as exc:
        raise PipelineError(f"{where}: {exc}") from None
    try:
        params_mod.build(method.params, {**project.defaults.get(stage.method, {}), **stage.values})
    except params_mod.ParamError as exc:
        raise PipelineError(f"{where}: {exc}") from None
    try:
        train = [project.dataset(n) for n in stage.datasets] if stage.datasets else \
            [d for d in project.datasets if d.split == "train"]
    except projects.ProjectError as exc:
        raise PipelineError(f"{where}: {exc}") from None
    if not train:
        raise PipelineError(f"{where}: project '{project.name}' has no training data yet.")
    evals = [] if stage.datasets else [d for d in project.datasets if d.split == "eval"]
    for entry in train + evals:
        if entry.kind not in method.data_kinds and entry.kind != "mixed":
            hint = "" if stage.datasets else f" Name the stage's datasets: {stage.method}@NAME."
            raise PipelineError(f"{where}: dataset '{entry.name}' holds {entry.kind} records; {method.title} "
                                f"needs {' or '.join(method.data_kinds)}.{hint}")
    _check_base(project, stage, index, previous, where)


def _check_base(project: projects.Project, stage: Stage, index: int, previous: Stage | None, where: str) -> None:
    from workbench.run.model_refs import RefError, resolve_ref

    base = stage.base_for(index)
    if base == PREVIOUS:
        if previous is None:
            raise PipelineError(f"{where} starts from the previous stage, but it is the first one; "
                                f"use base=base or base=run:<id>.")
        if registry.get(previous.method).kind != "train":
            raise PipelineError(f"{where} starts from stage {index} ({previous.method}), which trains no model.")
    elif base != BASE:
        try:
            resolve_ref(project.name, base)
        except RefError as exc:
            raise PipelineError(f"{where}: {exc}") from None


def check(project_name: str, stages: list[Stage], names: list[str] | None = None) -> None:
    """Raise PipelineError on the first stage that could not start; `names` (a sweep's points)
    replace `Stage N (method)` in the messages and mark the stages independent."""
    if not stages:
        raise PipelineError(f"A pipeline needs at least one stage: --stage \"{SYNTAX}\".")
    project = projects.load(project_name)
    for index, stage in enumerate(stages):
        previous = stages[index - 1] if index and names is None else None
        check_stage(project, stage, index, previous, names[index] if names else "")


# definitions ---------------------------------------------------------------------


@dataclass
class Pipeline:
    name: str
    stages: list[Stage]
    created: str = field(default_factory=projects.now_iso)


def definitions_dir(project_name: str) -> Path:
    return locations.project_dir(project_name) / "pipelines"


def runs_home(project_name: str) -> Path:
    """Where runs of pipelines and sweeps live: one folder each, holding the plan and the runner's files."""
    return locations.project_dir(project_name) / "pipeline-runs"


def plan_dir(project_name: str, plan_id: str) -> Path:
    return runs_home(project_name) / plan_id


def _stages_to_toml(stages: list[Stage]) -> list[dict]:
    return [{"method": s.method, "values": dict(s.values), "datasets": list(s.datasets), "base": s.base}
            for s in stages]


def _stages_from_toml(items: list[dict]) -> list[Stage]:
    return [Stage(method=d["method"], values=d.get("values", {}), datasets=d.get("datasets", []),
                  base=d.get("base", "")) for d in items]


def define(project_name: str, name: str, stages: list[Stage], replace: bool = False) -> Pipeline:
    """Check the stages, then save the pipeline in the project."""
    projects.validate_name(name)
    path = definitions_dir(project_name) / f"{name}.toml"
    check(project_name, stages)
    if path.exists() and not replace:
        raise PipelineError(f"Project '{project_name}' already has a pipeline '{name}' (--replace redefines it).")
    pipeline = Pipeline(name=name, stages=stages)
    write_toml(path, {"pipeline": {"name": name, "created": pipeline.created}, "stages": _stages_to_toml(stages)})
    return pipeline


def load(project_name: str, name: str) -> Pipeline:
    path = definitions_dir(project_name) / f"{name}.toml"
    if not path.exists():
        known = ", ".join(p.name for p in list_pipelines(project_name)) or "none"
        raise PipelineError(f"Project '{project_name}' has no pipeline '{name}' (it has: {known}).")
    data = read_toml(path)
    return Pipeline(name=name, stages=_stages_from_toml(data.get("stages", [])),
                    created=data.get("pipeline", {}).get("created", ""))


def list_pipelines(project_name: str) -> list[Pipeline]:
    folder = definitions_dir(project_name)
    return [load(project_name, p.stem) for p in sorted(folder.glob("*.toml"))] if folder.exists() else []


# plans: one run of a pipeline or a sweep -------------------------------------------


@dataclass
class Plan:
    id: str
    project: str
    kind: str  # pipeline | sweep
    name: str
    stages: list[Stage]
    parallel: int = 1  # sweeps: runs at a time (one GPU each)
    grid: dict[str, list] = field(default_factory=dict)  # sweeps: the values swept, by parameter
    created: str = field(default_factory=projects.now_iso)

    @property
    def path(self) -> Path:
        return plan_dir(self.project, self.id)

    def save(self) -> None:
        write_toml(self.path / PLAN_FILE, {
            "plan": {"id": self.id, "project": self.project, "kind": self.kind, "name": self.name,
                     "parallel": self.parallel, "created": self.created},
            "grid": self.grid, "stages": _stages_to_toml(self.stages)})

    def point(self, index: int) -> dict[str, Any]:
        """A sweep stage's grid values."""
        return {k: self.stages[index].values.get(k) for k in self.grid}


def new_plan_id(project_name: str, label: str) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    plan_id, n = f"{stamp}-{label}", 1
    while plan_dir(project_name, plan_id).exists():
        n += 1
        plan_id = f"{stamp}-{label}-{n}"
    return plan_id


def load_plan(project_name: str, plan_id: str) -> Plan:
    path = plan_dir(project_name, plan_id) / PLAN_FILE
    if not path.exists():
        raise PipelineError(f"Project '{project_name}' has no pipeline or sweep run '{plan_id}'.")
    data = read_toml(path)
    meta = data["plan"]
    return Plan(id=meta["id"], project=project_name, kind=meta.get("kind", "pipeline"), name=meta.get("name", ""),
                stages=_stages_from_toml(data.get("stages", [])), parallel=meta.get("parallel", 1),
                grid=data.get("grid", {}), created=meta.get("created", ""))


# what the runner writes ----------------------------------------------------------


@dataclass
class RunnerStarted(ev.Event):
    type: ClassVar[str] = "runner_started"
    pid: int = 0
    resumed: bool = False


@dataclass
class RunnerStatus(ev.Event):
    type: ClassVar[str] = "runner_status"
    message: str = ""


@dataclass
class StageStarted(ev.Event):
    """A stage's run was launched (`action` started), resumed, or found still running (watched)."""

    type: ClassVar[str] = "stage_started"
    stage: int = 0  # 0-based
    run_id: str = ""
    action: str = "started"
    gpu: str = ""


@dataclass
class StageEnded(ev.Event):
    type: ClassVar[str] = "stage_ended"
    stage: int = 0
    run_id: str = ""
    state: str = ""  # the run's state, or failed when it could not start
    message: str = ""


@dataclass
class RunnerFinished(ev.Event):
    """The runner is done: completed, failed or stopped; `stage` is the one that stopped it (-1: none)."""

    type: ClassVar[str] = "runner_finished"
    state: str = "completed"
    stage: int = -1
    message: str = ""


RUNNER_EVENTS = {cls.type: cls for cls in (RunnerStarted, RunnerStatus, StageStarted, StageEnded, RunnerFinished)}


def read_runner_events(folder: Path) -> list[ev.Event]:
    out = []
    for data in ev.JsonlTail(Path(folder) / layout.EVENTS).read_dicts():
        cls = RUNNER_EVENTS.get(data.get("type", ""))
        if cls is not None:
            names = {f.name for f in fields(cls)}
            out.append(cls(**{k: v for k, v in data.items() if k in names}))
    return out


# state of a plan's run, from files -----------------------------------------------


@dataclass
class StageInfo:
    index: int
    stage: Stage
    run_id: str = ""
    run: store.RunInfo | None = None
    state: str = "pending"  # pending, a run's state, or failed when it could not start
    message: str = ""


@dataclass
class PlanInfo:
    plan: Plan
    state: str  # starting | running | stalled | completed | failed | stopped | lost
    alive: bool
    stages: list[StageInfo]
    message: str = ""
    stalled_for: float = 0.0  # seconds since a stalled runner's last heartbeat
    stage: int = -1  # the stage a finished run ended on, else the current one
    notes: list[str] = field(default_factory=list)  # the runner's status lines

    @property
    def id(self) -> str:
        return self.plan.id

    @property
    def resumable(self) -> bool:
        return not self.alive and self.state in ("stopped", "failed", "lost")

    @property
    def current(self) -> StageInfo | None:
        return self.stages[self.stage] if 0 <= self.stage < len(self.stages) else None

    def progress(self) -> str:
        """`stage 2/3 dpo running` for a pipeline, `3/4 completed, 1 running` for a sweep."""
        if self.plan.kind == "sweep":
            done = sum(s.state == "completed" for s in self.stages)
            running = sum(s.state in ("starting", "running") for s in self.stages)
            return f"{done}/{len(self.stages)} completed" + (f", {running} running" if running else "")
        current = self.current
        if current is None:
            return f"{len(self.stages)} stages"
        return f"stage {current.index + 1}/{len(self.stages)} {current.stage.method} {current.state}"


def _stage_infos(plan: Plan, events: list[ev.Event], runs: dict[str, store.RunInfo] | None) -> list[StageInfo]:
    infos = [StageInfo(i, s) for i, s in enumerate(plan.stages)]
    for event in events:
        if isinstance(event, StageStarted) and 0 <= event.stage < len(infos):
            infos[event.stage].run_id, infos[event.stage].message = event.run_id, ""
        elif isinstance(event, StageEnded) and 0 <= event.stage < len(infos) and not event.run_id:
            infos[event.stage].state, infos[event.stage].message = event.state, event.message  # never started
    for info in infos:
        if not info.run_id:
            continue
        run = (runs or {}).get(info.run_id)
        if run is None:
            try:
                run = store.get(plan.project, info.run_id)
            except store.RunError:
                info.state, info.message = "missing", f"run {info.run_id} is gone"
                continue
        info.run, info.state, info.message = run, run.state, run.message
    return infos


def status(project_name: str, plan_id: str, runs: dict[str, store.RunInfo] | None = None,
           life: liveness.Life | None = None) -> PlanInfo:
    """The state of a pipeline or sweep run; `runs` (by id) spares reading runs already read. The runner
    holds the plan folder's lock as a worker holds its run's: held, it is running (stalled when its
    heartbeat is silent); free, lost. `life` stands in for the lock's (liveness.NOBODY for its holder)."""
    plan = load_plan(project_name, plan_id)
    life = life or liveness.check(plan.path)  # before the events: a runner that ended before wrote them all
    events = read_runner_events(plan.path)
    alive = life.alive
    terminal: RunnerFinished | None = None
    started = False
    for event in events:
        if isinstance(event, RunnerStarted):
            terminal, started = None, True
        elif isinstance(event, RunnerFinished):
            terminal = event
    if terminal is not None and alive and liveness.mtime(plan.path / layout.PID) > terminal.time:
        terminal, started = None, False  # resumed: the new runner has not written its first event yet
    stages = _stage_infos(plan, events, runs)
    info = PlanInfo(plan=plan, state="starting", alive=alive and terminal is None, stages=stages,
                    notes=[e.message for e in events if isinstance(e, RunnerStatus)])
    if terminal is not None:
        info.state, info.message, info.stage = terminal.state, terminal.message, terminal.stage
    elif life.stalled:
        info.state, info.stalled_for = "stalled", life.silent
        who = f"pid {life.pid}" if life.pid else "the runner"
        info.message = f"no heartbeat for {life.silent:.0f} s from {who}; it still holds the run: stop reaches it"
    elif alive:
        info.state = "running" if started else "starting"
    else:
        info.state = "lost"
        info.message = "the runner ended without a final event (killed?); resume continues it"
    if info.stage < 0 and plan.kind == "pipeline":
        launched = [s.index for s in stages if s.run_id]
        info.stage = launched[-1] if launched else 0
    return info


def list_plan_runs(project_name: str, runs: dict[str, store.RunInfo] | None = None) -> list[PlanInfo]:
    folder = runs_home(project_name)
    if not folder.exists():
        return []
    return [status(project_name, d.name, runs) for d in sorted(folder.iterdir()) if (d / PLAN_FILE).exists()]


def group_runs(runs: list[store.RunInfo], plans: list[PlanInfo]) -> list[tuple[int, store.RunInfo | PlanInfo]]:
    """The runs list, newest first: each pipeline or sweep once, its runs indented under it
    (depth 1, in stage order), every other run on its own (depth 0)."""
    owned = {s.run_id for p in plans for s in p.stages if s.run_id}
    top: list[store.RunInfo | PlanInfo] = [r for r in runs if r.id not in owned] + list(plans)
    rows: list[tuple[int, store.RunInfo | PlanInfo]] = []
    for item in sorted(top, key=lambda x: x.id, reverse=True):
        rows.append((0, item))
        if isinstance(item, PlanInfo):
            rows.extend((1, s.run) for s in item.stages if s.run is not None)
    return rows
