"""A job spec for a registered method: everything checked that can be checked without a model.

Its id is reserved (its run folder made) last, once every check has passed: a refused spec leaves
nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from workbench import params as params_mod
from workbench import project as projects
from workbench import registry
from workbench.data.mixing import proportional_weights
from workbench.jobs.launch import LaunchError, new_run_id
from workbench.methods.kit import sharding
from workbench.methods.kit.train_args import check_mode
from workbench.run.model_refs import RefError, resolve_ref
from workbench.run.spec import DataSource, JobSpec, Runtime, default_threads

CUDA_PROBE = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)"
CUDA_PROBE_TIMEOUT = 120.0  # seconds: importing torch on a busy machine


def make_spec(project_name: str, method_name: str, values: dict[str, Any] | None = None,
              datasets: list[str] | None = None, runtime: Runtime | None = None,
              mix: dict[str, float] | str | None = None, base: str | None = None) -> JobSpec:
    """Check everything that can be checked without loading a model, and build the spec.

    `mix` weighs the training datasets ({name: weight}, whose names also choose them, or
    "proportional"); without it each weighs its size, so the sets are simply concatenated.
    `base` names the starting model (see run.model_refs): `run:<id>` chains this run on another's result."""
    project = projects.load(project_name)
    named = bool(datasets)  # datasets named one by one: no eval sets unless named too
    if isinstance(mix, dict):
        if datasets and set(datasets) != set(mix):
            raise LaunchError("--dataset and --mix name different datasets; --mix alone is enough.")
        datasets = list(mix)
    method = registry.get(method_name)
    chosen = params_mod.build(method.params, {**project.defaults.get(method_name, {}), **(values or {})})
    train_sets = [project.dataset(n) for n in datasets] if datasets else \
        [d for d in project.datasets if d.split == "train"]
    if not train_sets:
        raise LaunchError(f"Project '{project_name}' has no training data yet: import a dataset first.")
    eval_sets = [] if named else [d for d in project.datasets if d.split == "eval"]
    for entry in train_sets + eval_sets:
        if entry.kind not in method.data_kinds and entry.kind != "mixed":
            raise LaunchError(f"Dataset '{entry.name}' holds {entry.kind} records; {method.title} needs "
                              f"{' or '.join(method.data_kinds)}.")

    weights = mix if isinstance(mix, dict) else proportional_weights({e.name: e.records for e in train_sets})

    def source(entry, weight=1.0):
        return DataSource(dataset=entry.name, file=str(project.path / entry.file), kind=entry.kind, weight=weight)

    try:
        base_model = resolve_ref(project_name, base) if base else project.base_model
    except RefError as exc:
        raise LaunchError(str(exc)) from None
    runtime = runtime or Runtime()
    one_process(method, runtime)
    sharding.check(method_name, chosen, runtime)  # FSDP only where it can run, on either target
    notes: list[str] = []
    if runtime.target == "slurm":  # checked for the cluster's nodes (mounts, partition, time), not this machine
        from workbench.jobs.slurm_preflight import preflight
        notes = preflight(runtime, project_name, method_name, vars(chosen), sum(e.records for e in train_sets),
                          base_model)
    else:
        check_mode_here(chosen, runtime)
    if runtime.threads == 0 and runtime.target == "local":
        runtime.threads = default_threads()
    return JobSpec(
        id=new_run_id(project_name, method_name), project=project_name, method=method_name,
        runner=method.runner, base_model=base_model, base_ref=base or "base", params=vars(chosen),
        train=[source(e, weights[e.name]) for e in train_sets], eval=[source(e) for e in eval_sets], runtime=runtime,
        notes=notes,
    )


def one_process(method: registry.Method, runtime: Runtime) -> None:
    """A method that runs in one process gets one even on a machine with several GPUs (where `processes=0`
    means one a GPU); several processes asked of it are refused in one line."""
    if not method.one_process:
        return
    if runtime.processes > 1:
        why = "writes data" if method.kind != "train" else "trains in a loop of its own, not distributed"
        raise LaunchError(f"processes={runtime.processes}: {method.name} runs in one process (it {why}); "
                          "several processes are for the methods built on transformers' Trainer.")
    runtime.processes = 1


def check_mode_here(chosen: Any, runtime: Runtime) -> None:
    """The worker's `check_mode` (ParamError), asked of this machine before any run folder exists.

    Only a mode that needs CUDA (qlora) asks whether torch sees a CUDA device, in a child interpreter:
    this process never imports torch. The worker checks again on the machine where it runs."""
    if getattr(chosen, "mode", "lora") != "qlora":
        return
    device = "cpu" if runtime.device == "cpu" or not torch_sees_cuda() else "cuda"
    check_mode(chosen, Runtime(device=device))


def torch_sees_cuda() -> bool:
    """Whether torch, in a fresh interpreter with this environment (CUDA_VISIBLE_DEVICES...), sees a
    CUDA device. A probe that cannot answer (a crash, a timeout) counts as yes: the worker decides."""
    try:
        done = subprocess.run([sys.executable, "-c", CUDA_PROBE], capture_output=True, timeout=CUDA_PROBE_TIMEOUT,
                              env=dict(os.environ), stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return True
    return done.returncode != 3
