"""An export as a job: started detached, followed through its events, stopped with SIGTERM.

`start` checks what it can without loading a model, saves the export's spec in a folder of its
own (`runs/<run-id>/exports/jobs/<export-id>/`, or `<project>/exports/jobs/<export-id>/` for the
project's base model) and spawns the worker, which calls `run`. The export reports `status`
events, an `artifact` event per file written and per verification, and ends with `finished`
(its output folder) or `error` (a message for a person). It outlives whoever started it.
`follow` reads the events from the start: the CLI prints them, the export screen shows them,
and a screen opened while an export runs reattaches to it. Stopped or failed, an export leaves
no scratch folder (`<out>.merged-hf`) behind.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

from workbench import locations
from workbench import project as projects
from workbench.export import FORMATS as FOLDER_FORMATS
from workbench.export import ExportError, default_out
from workbench.export.embedding import refuse_embedding
from workbench.export.gguf import file_line
from workbench.export.gguf_run import DEFAULT_QUANTS, GGUF_FORMATS
from workbench.export.outdir import check_out, holds_files, mark, out_state  # noqa: F401 - out_state: for the screen
from workbench.jobs import launch, store
from workbench.jobs.follow import follow as follow_job
from workbench.run import disk, layout
from workbench.run import events as ev
from workbench.run.context import StopRequested
from workbench.run.spec import JobSpec, Runtime, default_threads

METHOD = "export"
RUNNER = "workbench.export.job:run"
FORMATS = FOLDER_FORMATS + GGUF_FORMATS


# the starting side: start, find, follow, stop -----------------------------------------------------

def refuse_untrained(project: str, run_id: str) -> None:
    """An ExportError, in one line, for a job of the project that trains no model (an evaluation, a sampling
    session...): only a training run has weights to export."""
    from workbench import registry

    method = store.get(project, run_id).method
    if not registry.trains(method):
        raise ExportError(registry.not_trained(run_id, method, "export"))


def start(project: str, run_id: str, fmt: str, out: Path | str | None = None, quants=DEFAULT_QUANTS,
          outtype: str = "f16", chat_check: bool = True, wait_for_start: bool = False, force: bool = False) -> Path:
    """Start exporting run `run_id` (the project's base model when empty) as `fmt`; the job's folder.
    `force` replaces an earlier export in `out` (complete or half-made), never a folder of other files."""
    if fmt not in FORMATS:
        raise ExportError(f"Unknown format '{fmt}'. Available: {', '.join(FORMATS)}.")
    if run_id:
        refuse_untrained(project, run_id)
        store.trained_weights(project, run_id)  # the run exists, has ended and has weights
        run_spec = JobSpec.load(locations.run_dir(project, run_id))
        refuse_embedding(run_spec, run_id, fmt)  # in one line here, not from the job's worker
        base_model = run_spec.base_model
    elif fmt == "gguf":
        base_model = projects.load(project).base_model
    else:
        raise ExportError(f"The base model exports as gguf only, not '{fmt}'.")
    out = Path(out).expanduser().absolute() if out else default_out(project, run_id, fmt)
    for folder in jobs(project, run_id):
        if JobSpec.load(folder).params.get("out") == str(out) and store.read(folder).alive:
            raise ExportError(f"Export {folder.name} is already writing to {out}.")
    check_out(out, force)
    parent = locations.export_jobs_dir(project, run_id)
    job_id = launch.new_job_id(parent, fmt)
    spec = JobSpec(id=job_id, project=project, method=METHOD, base_model=base_model, train=[],
                   params={"run": run_id, "format": fmt, "quants": list(quants), "outtype": outtype,
                           "out": str(out), "chat_check": bool(chat_check), "replace": bool(force)},
                   runtime=Runtime(device="cpu", precision="fp32", threads=default_threads()),
                   base_ref=f"run:{run_id}" if run_id else "base", runner=RUNNER)
    return launch.start(spec, wait_for_start=wait_for_start, run_dir=parent / job_id)


def jobs(project: str, run_id: str = "") -> list[Path]:
    """The export jobs of a run (of the base model when `run_id` is empty), oldest first."""
    parent = locations.export_jobs_dir(project, run_id)
    if not parent.is_dir():
        return []
    return sorted(d for d in parent.iterdir() if (d / layout.SPEC).exists())


def running(project: str, run_id: str = "") -> Path | None:
    """The folder of the newest export of the run that is still running, if any."""
    for folder in reversed(jobs(project, run_id)):
        if store.read(folder).alive:
            return folder
    return None


def follow(folder: Path, poll: float = 0.2, cancelled=lambda: False) -> Iterator[ev.Event]:
    """The export's events from the first, as they come (`jobs.follow`)."""
    return follow_job(folder, "The export", poll, cancelled)


def describe(event: ev.Event) -> str | None:
    """The progress line of an event, for a person; None for the events that have none."""
    if isinstance(event, ev.Status):
        return event.message
    if isinstance(event, ev.Artifact):
        return file_line(Path(event.path).name, event.size, event.verification)
    return None


def stop(folder: Path) -> None:
    """Ask the export to stop (SIGTERM to its process group)."""
    store.stop_job(Path(folder), f"Export {Path(folder).name}")


def wait(folder: Path, status=print) -> Path:
    """Follow the export in the foreground: its progress lines to `status`, its output folder returned,
    its error raised; an interrupt (Ctrl-C) stops it, then is raised once it has ended."""
    try:
        for event in follow(folder):
            line = describe(event)
            if line:
                status(line)
            if isinstance(event, ev.Error):
                raise ExportError(event.message)
            if isinstance(event, ev.Finished):
                if event.reason != "completed":
                    raise ExportError(f"The export was stopped (before it completed); see {folder}.")
                return Path(event.output)
    except KeyboardInterrupt:
        try:
            stop(folder)
        except store.RunError:
            pass
        for _ in follow(folder):
            pass
        raise
    raise ExportError(f"The export ended without a final event; see {folder}.")


# the worker's side ---------------------------------------------------------------------------------

def run(spec: JobSpec, job) -> Path:
    """The runner the worker calls: the export the spec describes, into `params.out`."""
    p = spec.params
    fmt, run_id, out = p["format"], p["run"], Path(p["out"])

    def on_file(path: Path, result: dict | None = None) -> None:
        from workbench.export.verify import report_path

        job.emit(ev.Artifact(path=str(path), size=path.stat().st_size,
                             verification=result["summary"] if result else "",
                             passed=bool(result["passed"]) if result else None,
                             report=str(report_path(path)) if result else ""), sync=True)

    if p.get("replace") and out_state(out)[0] in ("complete", "half"):
        shutil.rmtree(out)  # what the person chose to replace (checked again: it is still an export)
    check_out(out)
    marking = {"job": spec.id, "run": run_id, "format": fmt}
    mark(out, "writing", **marking)  # until it says complete, the folder reads as a half-made export
    try:
        if fmt in GGUF_FORMATS:
            from workbench.export.gguf_run import export_base, export_run

            if run_id:
                written = export_run(spec.project, run_id, fmt, p["quants"], p["outtype"], out, job.status,
                                     p["chat_check"], on_file)
            else:
                written = export_base(spec.project, p["quants"], p["outtype"], out, job.status, p["chat_check"],
                                      on_file)
        else:
            from workbench.export import export

            written = export(spec.project, run_id, fmt, out, status=job.status)
            job.emit(ev.Artifact(path=str(written), size=folder_size(written)), sync=True)
    except StopRequested:
        shutil.rmtree(out, ignore_errors=True)  # a stopped export leaves no half-written folder behind
        raise
    except BaseException:
        if not holds_files(out):  # refused before writing anything: no folder, rather than a marked empty one
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(layout.scratch(out), ignore_errors=True)
    mark(out, "complete", **marking)
    return written


def folder_size(path: Path) -> int:
    """Bytes an export's file or folder takes (`disk.size_of`)."""
    return disk.size_of(path)