"""The `pipeline` and `sweep` subcommands of `workbench`: chained stages and small grids of runs."""

from __future__ import annotations

import argparse
import json

STAGE_HELP = """\
A stage is METHOD[:KEY=VALUE,...][@DATASET[+DATASET...]]:
  sft:max_steps=50,mode=lora@chat    sft on the dataset 'chat' with two parameters set
  dpo:beta=0.1@prefs                 dpo on 'prefs', starting from the previous stage's model
  reward@prefs+more                  two datasets; every parameter at its default
The key base= chooses the starting model: previous (the default from stage 2 on), base (the
project's base model, the default of stage 1), run:<id>, run:<id>/checkpoint-N or a path.
Without @, a stage trains on the project's train datasets (and evaluates on its eval ones).
A value may hold commas (target_modules=q_proj,v_proj). Every stage is checked before saving."""


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _print_plan(info) -> None:
    """A pipeline or sweep run (a `pipelines.PlanInfo`): one line, then one line per stage."""
    said = f": {info.message}" if info.message else ""
    print(f"{info.id}\t{info.plan.kind} '{info.plan.name}'\t{info.state}{said}")
    for note in info.notes:
        print(f"  {note}")
    for s in info.stages:
        run = s.run
        steps = f"step {run.step}/{run.total_steps}" if run and run.total_steps else f"step {run.step if run else 0}"
        losses = f"loss {_fmt(run.last_loss if run else None)}\teval {_fmt(run.last_eval_loss if run else None)}"
        print(f"  {s.index + 1}\t{s.stage.to_text()}\t{s.state}\t{steps}\t{losses}\t{s.run_id or '-'}")
        if s.state not in ("completed", "pending", "running", "starting") and s.message:
            print(f"\t{s.message}")


def _finish(project: str, plan_id: str, wait: bool) -> None:
    from workbench.plans import runner as pipeline_runner
    from workbench.plans.pipelines import PipelineError

    if not wait:
        return
    info = pipeline_runner.wait(project, plan_id)
    _print_plan(info)
    if info.state != "completed":
        raise PipelineError(f"{info.plan.kind.capitalize()} run {plan_id} {info.state}: {info.message}")


def _plan_runs(project: str, kind: str):
    from workbench import project as projects
    from workbench.plans.pipelines import list_plan_runs

    projects.load(project)  # a mistyped name is an error, not an empty list
    return [p for p in list_plan_runs(project) if p.plan.kind == kind]


# pipeline -------------------------------------------------------------------------


def cmd_define(args) -> None:
    from workbench.plans.pipelines import define, parse_stage

    stages = [parse_stage(text, n) for n, text in enumerate(args.stage or [], 1)]
    pipeline = define(args.name, args.pipeline, stages, replace=args.replace)
    print(f"Defined pipeline '{pipeline.name}' with {len(stages)} stage(s):")
    for n, stage in enumerate(pipeline.stages, 1):
        print(f"  {n}\t{stage.to_text()}\tfrom {stage.base_for(n - 1)}")


def cmd_run(args) -> None:
    from workbench.plans import pipelines
    from workbench.plans import runner as pipeline_runner

    pipeline = pipelines.load(args.name, args.pipeline)
    pipelines.check(args.name, pipeline.stages)  # the data may have changed since it was defined
    plan = pipelines.Plan(id=pipelines.new_plan_id(args.name, f"pipe-{pipeline.name}"), project=args.name,
                          kind="pipeline", name=pipeline.name, stages=pipeline.stages)
    pipeline_runner.start(plan)
    print(plan.id, flush=True)
    _finish(args.name, plan.id, args.wait)


def cmd_status(args) -> None:
    from workbench.plans.pipelines import PipelineError, status

    if args.run:
        _print_plan(status(args.name, args.run))
        return
    runs = _plan_runs(args.name, args.kind)
    if not runs:
        raise PipelineError(f"Project '{args.name}' has no {args.kind} run yet.")
    _print_plan(runs[-1])


def cmd_stop(args) -> None:
    from workbench.plans import runner as pipeline_runner

    pipeline_runner.stop(args.name, args.run)
    print(f"Stopping {args.run}: its running stages save a checkpoint, then it ends.")
    if args.wait:
        info = pipeline_runner.wait(args.name, args.run, timeout=600)
        print(f"{info.state}: {info.message}")


def cmd_resume(args) -> None:
    from workbench.plans import runner as pipeline_runner

    pipeline_runner.resume(args.name, args.run)
    print(f"Resumed {args.run}", flush=True)
    _finish(args.name, args.run, args.wait)


def cmd_list(args) -> None:
    from workbench.plans import pipelines

    if args.kind == "pipeline":
        defined = pipelines.list_pipelines(args.name)
        print("Pipelines:" if defined else "No pipeline defined yet.")
        for p in defined:
            print(f"  {p.name}\t" + "  ->  ".join(s.to_text() for s in p.stages))
    runs = _plan_runs(args.name, args.kind)
    print(f"Runs ({len(runs)}):" if runs else f"No {args.kind} run yet.")
    for info in reversed(runs):
        print(f"  {info.id}\t{info.plan.name}\t{info.state}\t{info.progress()}")


# sweep -------------------------------------------------------------------------------


def cmd_sweep(args) -> None:
    from workbench.params import ParamError, parse_assignments
    from workbench.plans import runner as pipeline_runner
    from workbench.plans import sweeps
    from workbench.plans.pipelines import PipelineError

    if not args.method:
        raise ParamError("A sweep needs --method (and one --grid or more); `workbench sweep --help` shows how.")
    plan = sweeps.make_plan(args.name, args.method, sweeps.parse_grid(args.grid or []),
                            parse_assignments(args.set or []), datasets=args.dataset, base=args.base or "",
                            parallel=args.parallel)
    pipeline_runner.start(plan)
    print(plan.id, flush=True)
    if args.wait:
        info = pipeline_runner.wait(args.name, plan.id)
        _print_report(sweeps.report(args.name, plan.id), as_json=False)
        if info.state != "completed":
            raise PipelineError(f"Sweep {plan.id} {info.state}: {info.message}")


def _print_report(rep, as_json: bool) -> None:
    from workbench.plans import sweeps

    if as_json:
        print(json.dumps(rep.to_dict(), indent=2))
        return
    print(f"{rep.info.id}\t{rep.info.plan.name}\t{rep.info.state}" + (f": {rep.info.message}" if rep.info.message else ""))
    rows = sweeps.table(rep)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def cmd_report(args) -> None:
    from workbench.plans import sweeps

    _print_report(sweeps.report(args.name, args.run), args.json)


# parsers -----------------------------------------------------------------------------


def _run_verbs(actions, kind: str) -> None:
    p = actions.add_parser("status", help=f"a {kind} run and its stages (default: the latest run)")
    p.add_argument("run", nargs="?")
    p.set_defaults(func=cmd_status, kind=kind)
    for verb, func, text in (("stop", cmd_stop, f"stop a {kind} run: its running stages save a checkpoint"),
                             ("resume", cmd_resume, f"resume a {kind} run from its first stage not completed")):
        p = actions.add_parser(verb, help=text)
        p.add_argument("run")
        p.add_argument("--wait", action="store_true", help="wait for the run to end")
        p.set_defaults(func=func, kind=kind)
    p = actions.add_parser("list", help=f"the project's {kind}s and their runs")
    p.set_defaults(func=cmd_list, kind=kind)


def add_parsers(sub) -> None:
    p = sub.add_parser("pipeline", help="define and run pipelines: stages trained one after another",
                       description="Pipelines: named lists of stages; each stage trains from the previous "
                                   "stage's model. A run of a pipeline is one background runner.",
                       epilog=STAGE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="the project")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    d = actions.add_parser("define", help="check and save a pipeline", epilog=STAGE_HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("pipeline", help="the pipeline's name")
    d.add_argument("--stage", action="append", metavar="STAGE", required=True,
                   help="one stage, in order (repeatable); see below")
    d.add_argument("--replace", action="store_true", help="redefine a pipeline of that name")
    d.set_defaults(func=cmd_define)
    r = actions.add_parser("run", help="start a run of a pipeline in the background; prints its id")
    r.add_argument("pipeline")
    r.add_argument("--wait", action="store_true", help="wait for the last stage to end")
    r.set_defaults(func=cmd_run)
    _run_verbs(actions, "pipeline")

    s = sub.add_parser("sweep", help="train a method at every point of a grid of values, then compare",
                       description="Start a sweep: one run per combination of the --grid values, one at a "
                                   "time (or --parallel N at a time, one GPU each). Prints the sweep's id; "
                                   "`sweep NAME report ID` compares its runs.",
                       epilog="example: workbench sweep demo --method sft --grid learning_rate=1e-4,5e-4 "
                              "--grid lora_r=8,16 --set max_steps=100")
    s.add_argument("name", help="the project")
    s.add_argument("--method", help="the method every run trains with")
    s.add_argument("--grid", action="append", metavar="KEY=V1,V2,...", help="a parameter and its values (repeatable)")
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="a parameter every run shares (repeatable)")
    s.add_argument("--dataset", action="append", help="train on this dataset only (repeatable)")
    s.add_argument("--base", metavar="MODEL", help="start every run from: base (default), run:<id>, or a path")
    s.add_argument("--parallel", type=int, default=1, metavar="N",
                   help="runs at a time, one GPU each (on a machine without GPUs: one at a time)")
    s.add_argument("--wait", action="store_true", help="wait for every run, then print the report")
    s.set_defaults(func=cmd_sweep)
    actions = s.add_subparsers(dest="action", metavar="ACTION")
    rep = actions.add_parser("report", help="compare a sweep's runs: one row each, best final eval loss first")
    rep.add_argument("run", metavar="SWEEP")
    rep.add_argument("--json", action="store_true")
    rep.set_defaults(func=cmd_report)
    _run_verbs(actions, "sweep")
