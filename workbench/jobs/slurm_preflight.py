"""What is checked before a run is submitted to Slurm, each refusal one line a person can act on.

- The run folder, the base model (and the cache it is converted into) and the workbench's Python are on
  a filesystem the compute nodes see: under one of `$WORKBENCH_SHARED_MOUNTS` (folders separated by `:`)
  when it is set, else on a network filesystem of this machine's mount table (NFS, Lustre, GPFS...).
- The partition exists (`sinfo`), and its own limit allows the time asked for.
- The time limit is above the estimated run time: the steps the run will take at the pace measured in
  the project's latest run of the same method on the same partition and allocation (its time from
  `started` to training, and its seconds per step). With no such run there is nothing to estimate from:
  the spec's notes say so.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from workbench import locations, models
from workbench.jobs.slurm import SlurmError, SlurmSettings, minutes
from workbench.run import events as ev
from workbench.run.spec import JobSpec, Runtime

SHARED_MOUNTS_ENV = "WORKBENCH_SHARED_MOUNTS"
NETWORK_FILESYSTEMS = {"nfs", "nfs4", "lustre", "gpfs", "beegfs", "cephfs", "ceph", "cifs", "smb3", "smbfs", "panfs",
                       "wekafs", "glusterfs", "fuse.glusterfs", "fuse.cephfs", "fuse.juicefs", "fuse.weka", "orangefs",
                       "pvfs2", "afs", "9p", "virtiofs"}
MOUNTS = Path("/proc/self/mounts")


def preflight(runtime: Runtime, project_name: str, method: str, params: dict[str, Any], records: int,
              base_model: str) -> list[str]:
    """Check a Slurm run before its folder exists (SlurmError for the first problem); notes for its spec."""
    settings = SlurmSettings.from_dict(dict(runtime.slurm or {}))
    check_shared(shared_things(project_name, base_model))
    check_partition(settings)
    found = estimate_seconds(project_name, method, params, records, settings)
    if found is None:
        return [f"No earlier {method} run on this partition and allocation to time: the time limit "
                f"{settings.time} was not checked against an estimate."]
    seconds, why = found
    if seconds > settings.minutes() * 60 - settings.grace:
        raise SlurmError(f"The time limit {settings.time} is below the estimated run time {clock(seconds)} ({why}) "
                         f"and the {settings.grace} s kept to save at its end: raise time= or lower max_steps.")
    return [f"Estimated run time {clock(seconds)} ({why}), within the time limit {settings.time}."]


# shared filesystems -------------------------------------------------------------------


def shared_things(project_name: str, base_model: str) -> list[tuple[str, Path]]:
    """(what, path) of everything the compute nodes read or write."""
    things = [("The run folder", locations.runs_dir(project_name)), ("The workbench's Python", Path(sys.prefix))]
    kind = models.check(base_model)
    if kind != "default":
        things.append(("The base model", Path(base_model).expanduser()))
    if kind != "folder":  # a GGUF or an adapter is converted or merged into the cache first
        things.append(("The model cache (where the base model is converted)", locations.models_cache()))
    return things


def check_shared(things: list[tuple[str, Path]], mounts_text: str | None = None) -> None:
    configured = [Path(p).expanduser().resolve() for p in os.environ.get(SHARED_MOUNTS_ENV, "").split(":") if p.strip()]
    table = None if configured else mount_table(mounts_text)
    for what, path in things:
        real = Path(path).resolve()
        if configured:
            if not any(real == m or m in real.parents for m in configured):
                raise SlurmError(f"{what} {real} is not under the shared mounts {SHARED_MOUNTS_ENV}="
                                 f"{':'.join(map(str, configured))}: the compute nodes would not see it.")
        else:
            point, fstype = mount_of(real, table)
            if fstype not in NETWORK_FILESYSTEMS:
                raise SlurmError(f"{what} {real} is on {fstype} ({point}), not a network filesystem the compute "
                                 f"nodes see; move it, or set {SHARED_MOUNTS_ENV} to the shared folders.")


def mount_table(text: str | None = None) -> list[tuple[Path, str]]:
    """(mount point, filesystem type) of this machine's mounts."""
    if text is None:
        try:
            text = MOUNTS.read_text()
        except OSError:
            return []
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            point = parts[1].encode().decode("unicode_escape")  # \040 for a space
            out.append((Path(point), parts[2]))
    return out


def mount_of(path: Path, table: list[tuple[Path, str]]) -> tuple[Path, str]:
    """The mount point holding `path` (the longest that contains it) and its filesystem type."""
    best = (Path("/"), "unknown")
    for point, fstype in table:
        if (path == point or point in path.parents) and len(point.parts) >= len(best[0].parts):
            best = (point, fstype)
    return best


# the partition ------------------------------------------------------------------------


def partitions() -> dict[str, int | None]:
    """Each partition's time limit in minutes (None: infinite); the default partition's name ends in `*`."""
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%P|%l"], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise SlurmError("sinfo is not on PATH: submit from a machine of the Slurm cluster (its login node).") from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SlurmError(f"sinfo could not run: {exc}") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise SlurmError(f"sinfo failed: {said[-1] if said else f'exit {done.returncode}'}")
    out: dict[str, int | None] = {}
    for line in done.stdout.splitlines():
        name, _, limit = line.strip().partition("|")
        if name:
            try:
                out[name] = None if limit.strip() in ("infinite", "UNLIMITED", "") else minutes(limit)
            except SlurmError:
                out[name] = None
    return out


def check_partition(settings: SlurmSettings) -> None:
    found = partitions()
    names = {name.rstrip("*"): limit for name, limit in found.items()}
    chosen = settings.partition or next((n.rstrip("*") for n in found if n.endswith("*")), "")
    if settings.partition and settings.partition not in names:
        raise SlurmError(f"Slurm has no partition '{settings.partition}' (partitions: {', '.join(found) or 'none'}).")
    limit = names.get(chosen)
    if limit is not None and settings.minutes() > limit:
        raise SlurmError(f"The time limit {settings.time} is above partition {chosen}'s limit of {clock(limit * 60)}.")


# the time -----------------------------------------------------------------------------


def planned_steps(params: dict[str, Any], records: int, world_size: int) -> int | None:
    """Optimizer steps of a run: max_steps, else epochs over the records at the global batch."""
    if int(params.get("max_steps", 0) or 0) > 0:
        return int(params["max_steps"])
    if "epochs" not in params or records <= 0:
        return None
    batch = int(params.get("batch_size", 1) or 1) * int(params.get("grad_accum", 1) or 1) * max(world_size, 1)
    return math.ceil(float(params["epochs"]) * math.ceil(records / batch))


def pace(events: list[ev.Event]) -> tuple[float, float] | None:
    """(seconds from `started` to training, seconds per step) of a run's latest life that trained."""
    started = begin = None
    logs: list[ev.Log] = []
    for event in events:
        if isinstance(event, ev.Started):
            started, begin, logs = event, None, []
        elif isinstance(event, ev.TrainBegin):
            begin, logs = event, []
        elif isinstance(event, ev.Log) and begin is not None:
            logs.append(event)
    if started is None or begin is None or not logs:
        return None
    steps = logs[-1].step - (min(log.step for log in logs) - 1)
    if steps <= 0 or logs[-1].time <= begin.time:
        return None
    return begin.time - started.time, (logs[-1].time - begin.time) / steps


def estimate_seconds(project_name: str, method: str, params: dict[str, Any], records: int,
                     settings: SlurmSettings) -> tuple[float, str] | None:
    """(seconds, how) the run should take, timed on the project's latest like run; None without one."""
    from workbench.jobs import store

    steps = planned_steps(params, records, settings.world_size)
    if steps is None:
        return None
    for info in reversed(store.list_runs(project_name)):
        try:
            spec = JobSpec.load(info.path)
        except (OSError, KeyError, ValueError, TypeError):
            continue
        if spec.method != method or getattr(spec.runtime, "target", "local") != "slurm":
            continue
        other = SlurmSettings(**{k: v for k, v in (spec.runtime.slurm or {}).items()
                                 if k in SlurmSettings.__dataclass_fields__})
        if (other.partition, other.nodes, other.gpus_per_node) != (settings.partition, settings.nodes,
                                                                   settings.gpus_per_node):
            continue
        measured = pace(info.events)
        if measured is None:
            continue
        start, per_step = measured
        return start + steps * per_step, f"{steps} steps at {per_step:.2f} s each, as run {info.id} went"
    return None


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
