"""Where a job runs, `runtime.target`: `local` (a detached worker on this machine, jobs.launch) or `slurm`
(a job on the cluster, jobs.slurm); and the runtime settings a person gives as `KEY=VALUE[,KEY=VALUE]`
(`workbench train ... --target slurm --set-runtime partition=gpu,nodes=2,gpus_per_node=8`).

A key of the runtime itself (device, threads, precision, seed) sets it for either target; a Slurm
setting (partition, nodes, gpus_per_node, time, account, extra, grace) goes to `[runtime.slurm]`, and
`extra` adds one `#SBATCH` line each time it is given.
"""

from __future__ import annotations

import re
from dataclasses import fields

from workbench.jobs.slurm import SlurmError, SlurmSettings
from workbench.run.spec import Runtime

TARGETS = ("local", "slurm")
LOCAL_KEYS = tuple(f.name for f in fields(Runtime) if f.name not in ("target", "slurm"))
SLURM_KEYS = tuple(f.name for f in fields(SlurmSettings))


class TargetError(SlurmError):
    kind = "bad_spec"


def split_assignments(items: list[str]) -> list[tuple[str, str]]:
    """`a=1,b=x` (repeatable) as [(a, "1"), (b, "x")]; a comma inside a value stays when no `key=` follows it."""
    out = []
    for item in items:
        for part in re.split(r",(?=\s*[A-Za-z_]+\s*=)", item):
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise TargetError(f"Runtime setting '{part}' is not KEY=VALUE.")
            out.append((key.strip(), value.strip()))
    return out


def runtime_from(target: str | None = None, assignments: list[str] | None = None,
                 runtime: Runtime | None = None) -> Runtime:
    """A runtime for `target` with the settings of `assignments` (TargetError for a bad one)."""
    runtime = runtime or Runtime()
    runtime.target = target or runtime.target
    if runtime.target not in TARGETS:
        raise TargetError(f"Target '{runtime.target}' is unknown: it can be {' or '.join(TARGETS)}.")
    slurm = dict(runtime.slurm or {})
    for key, value in split_assignments(assignments or []):
        if key in LOCAL_KEYS:
            default = getattr(Runtime(), key)
            try:
                if isinstance(default, bool) and value.lower() not in ("true", "false"):
                    raise ValueError(value)
                setattr(runtime, key, value.lower() == "true" if isinstance(default, bool) else type(default)(value))
            except ValueError:
                raise TargetError(f"Runtime setting {key} must be a {type(default).__name__}, not '{value}'.") from None
        elif key in SLURM_KEYS:
            if runtime.target != "slurm":
                raise TargetError(f"Runtime setting '{key}' is a Slurm setting: add --target slurm.")
            if key == "extra":
                slurm["extra"] = [*slurm.get("extra", []), value]
            else:
                slurm[key] = value
        else:
            raise TargetError(f"Unknown runtime setting '{key}': the settings are "
                              f"{', '.join(LOCAL_KEYS)}, and for Slurm {', '.join(SLURM_KEYS)}.")
    if runtime.target == "slurm":
        runtime.slurm = SlurmSettings.from_dict(slurm).to_dict()
    return runtime
