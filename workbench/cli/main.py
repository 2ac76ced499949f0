"""`workbench`: with no argument, the terminal app; with a subcommand, the same action headless.

Every subcommand exits 0 on success and non-zero with a one-line error otherwise.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path

from workbench import locations
from workbench import project as projects
from workbench.cli import chat, data, evaluate, export, method, plans, rank, rewards, teacher
from workbench.data.kinds import KINDS
from workbench.registry.specs import make_spec
from workbench.terminal import for_stream

# Modules that add their own subcommands with `add_parsers(sub)`; each is light (no torch at import).
GROUPS = (plans, method, rank, rewards, teacher, chat, evaluate)


class CommandError(Exception):
    pass


def cmd_new(args) -> None:
    p = projects.create(args.name, base_model=args.base_model, description=args.description or "")
    print(f"Created project '{p.name}' in {p.path}")


def cmd_list(args) -> None:
    refused: list[tuple[str, str]] = []
    for p in projects.list_projects(refused):
        print(f"{p.name}\t{len(p.datasets)} dataset(s)\t{p.base_model}")
    for name, why in refused:
        why = why.removeprefix(f"Project '{name}': ")
        print(for_stream(f"workbench: project '{name}' not listed: {why}", sys.stderr), file=sys.stderr)


def cmd_import(args) -> None:
    import json

    from workbench.data.importer import import_file

    def progress(done: int, total: int) -> None:
        print(f"progress {done} {total}", flush=True)

    report = import_file(args.name, Path(args.file), name=args.dataset, split=args.split, kind=args.kind,
                         dedupe=args.dedupe, progress=progress if args.progress else None, replace=args.replace)
    print(for_stream(report, sys.stdout))  # the file's name and problems: control characters as marks
    if args.progress:
        print("report " + json.dumps(report.to_dict(), ensure_ascii=False), flush=True)
    if report.imported == 0:
        raise CommandError(f"No usable record in {args.file}.")


def cmd_train(args) -> None:
    from workbench.data.mixing import parse_mix
    from workbench.jobs import launch, store
    from workbench.jobs.targets import runtime_from
    from workbench.params import parse_assignments

    values = parse_assignments(args.set or [])
    mix = parse_mix(args.mix) if args.mix else None
    runtime = runtime_from(args.target, args.set_runtime, processes_runtime(args))
    spec = make_spec(args.name, args.method, values, datasets=args.dataset, mix=mix, base=args.base, runtime=runtime)
    launch.start(spec, wait_for_start=True)
    print(spec.id, flush=True)
    if runtime.target == "slurm":
        print(f"Submitted to Slurm as job {store.get(args.name, spec.id).slurm_job}.", flush=True)
    if args.wait:
        info = store.wait(args.name, spec.id)
        print(f"{info.state}: step {info.step}, last loss {_fmt(info.last_loss)}")
        if info.state != "completed":
            raise CommandError(f"Run {spec.id} {info.state}: {info.message}")


def processes_runtime(args):
    """The runtime of `--processes` and `--gpus` (None when neither is given), checked (`jobs.ranks`)."""
    if args.processes is None and not args.gpus:
        return None
    from workbench.jobs import ranks
    from workbench.run.spec import Runtime

    runtime = Runtime(processes=args.processes or 0, gpus=args.gpus or "")
    ranks.check(runtime)
    return runtime


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def cmd_runs(args) -> None:
    from workbench.jobs import store
    from workbench.jobs.peak_report import run_peak

    projects.load(args.name)  # a mistyped name is an error, not "No runs yet."
    runs = store.list_runs(args.name)
    if not runs:
        print("No runs yet.")
    for r in runs:
        total = f"/{r.total_steps}" if r.total_steps else ""
        state = f"stalled {r.stalled_for:.0f} s" if r.state == "stalled" and r.stalled_for else r.state
        slurm = f"\tslurm {r.slurm_job}" if r.slurm_job else ""
        peak = run_peak(r.path, r.events)  # a finished run's peak memory, beside its estimate
        print(f"{r.id}\t{r.method}\t{state}\tstep {r.step}{total}\tloss {_fmt(r.last_loss)}{slurm}"
              + (f"\tpeak {peak}" if peak else ""))


def cmd_stop(args) -> None:
    from workbench.jobs import store

    from workbench.registry.stopping import on_stop

    info = store.stop(args.name, args.run)
    print(f"Stopping {args.run}: {on_stop(info.method)}.")
    if args.wait:
        info = store.wait(args.name, args.run, timeout=600)
        print(f"{info.state} at step {info.step}")


def cmd_resume(args) -> None:
    from workbench.jobs import launch, store

    launch.resume(args.name, args.run)
    print(f"Resumed {args.run}")
    if args.wait:
        info = store.wait(args.name, args.run)
        print(f"{info.state}: step {info.step}, last loss {_fmt(info.last_loss)}")
        if info.state != "completed":
            raise CommandError(f"Run {args.run} {info.state}: {info.message}")


def cmd_methods(args) -> None:
    from workbench import registry
    from workbench.params import describe

    chosen = [registry.get(args.method)] if args.method else list(registry.METHODS.values())
    for m in chosen:
        print(f"{m.name}: {m.title}. {m.summary} Data: {', '.join(m.data_kinds)}.")
        if not args.method:
            continue
        for info in describe(m.params):
            bounds = f" one of {', '.join(info.choices)}" if info.choices else ""
            if info.min is not None or info.max is not None:
                bounds = f" [{'' if info.min is None else f'{info.min:g}'}..{'' if info.max is None else f'{info.max:g}'}]"
            print(f"  {info.name} = {info.default!r}{bounds}\n      {info.help}")


def cmd_home(args) -> None:
    print(locations.projects_home())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("new", help="create a project")
    p.add_argument("name")
    p.add_argument("--base-model", default="default", help="a model folder, a .gguf file, or 'default' (SmolLM2-135M-Instruct)")
    p.add_argument("--description")
    p.set_defaults(func=cmd_new)

    p = sub.add_parser("list", help="list projects")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("import", help="import a data file into a project and print the validation report")
    p.add_argument("name")
    p.add_argument("file")
    p.add_argument("--dataset", help="dataset name (default: the file name)")
    p.add_argument("--split", choices=("train", "eval"), default="train")
    p.add_argument("--kind", choices=KINDS, help="read every record as this kind (default: detected per record)")
    p.add_argument("--dedupe", action="store_true", help="leave out records identical to an earlier one")
    p.add_argument("--replace", action="store_true",
                   help="replace the project's dataset of the same name (kept until the new one is complete)")
    p.add_argument("--progress", action="store_true",
                   help="print 'progress DONE TOTAL' lines while reading, and a final 'report {json}' line")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("train", help="start a training run; prints its id")
    p.add_argument("name")
    p.add_argument("--method", default="sft")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a method parameter (repeatable)")
    p.add_argument("--dataset", action="append", help="train on this dataset only (repeatable)")
    p.add_argument("--mix", metavar="A=W,B=W|proportional",
                   help="train on several datasets, each sampled by its weight (default: proportional to size)")
    p.add_argument("--base", metavar="MODEL",
                   help="start from: base (default), run:<id>, run:<id>/checkpoint-N, or a model/adapter path")
    p.add_argument("--wait", action="store_true", help="wait for the run to end")
    p.add_argument("--target", choices=("local", "slurm"), help="where the run goes: this machine (default) or Slurm")
    p.add_argument("--set-runtime", action="append", metavar="KEY=VALUE[,...]",
                   help="runtime settings: device, threads...; for Slurm partition, nodes, gpus_per_node, time, "
                        "account, extra (an #SBATCH line), grace")
    p.add_argument("--processes", type=int, metavar="N",
                   help="train on N processes (DDP under torchrun; default: one per GPU, one on the CPU)")
    p.add_argument("--gpus", metavar="0,1", help="the GPUs to train on (default: every visible one)")
    p.set_defaults(func=cmd_train)

    data.add_parsers(sub)

    p = sub.add_parser("runs", help="list a project's runs")
    p.add_argument("name")
    p.set_defaults(func=cmd_runs)

    for verb, func, text in (("stop", cmd_stop, "stop a run (it saves a checkpoint first)"),
                             ("resume", cmd_resume, "resume a stopped run from its last checkpoint")):
        p = sub.add_parser(verb, help=text)
        p.add_argument("name")
        p.add_argument("run")
        p.add_argument("--wait", action="store_true")
        p.set_defaults(func=func)

    export.add_parsers(sub)
    for group in GROUPS:
        group.add_parsers(sub)

    p = sub.add_parser("methods", help="list the methods, or one method's parameters")
    p.add_argument("method", nargs="?")
    p.set_defaults(func=cmd_methods)

    p = sub.add_parser("home", help="print where projects live")
    p.set_defaults(func=cmd_home)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        from screens.app import run_app

        return run_app()
    args = build_parser().parse_args(argv)
    if not getattr(args, "func", None):
        build_parser().print_help()
        return 2
    try:
        args.func(args)
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        if exc.errno in (errno.EIO, errno.EPIPE) or isinstance(exc, BrokenPipeError):
            return terminal_gone()
        return report(exc)
    except Exception as exc:  # noqa: BLE001 - one line for a person; tracebacks with WORKBENCH_DEBUG
        return report(exc)
    return 0


def terminal_gone() -> int:
    """The terminal went away (SSH dropped, pipe closed) while a command printed: a job it started or
    followed runs on in its own session; this command ends quietly, its output sent nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass
    return 1


def report(exc: BaseException) -> int:
    """One line for a person (the traceback with WORKBENCH_DEBUG set)."""
    if os.environ.get("WORKBENCH_DEBUG"):
        raise exc
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    print(f"workbench: error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
