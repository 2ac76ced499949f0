"""The job spec: everything a run needs, saved as `job.toml` so it can be repeated from it alone."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.files import read_toml, write_toml
from workbench.project import now_iso
from workbench.run import layout


@dataclass
class DataSource:
    dataset: str
    file: str
    kind: str
    weight: float = 1.0


@dataclass
class Runtime:
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch CPU threads; 0 = chosen by the launcher
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    seed: int = 42
    processes: int = 0  # ranks under torchrun (DDP or FSDP: `sharding`); 0 = one per visible or chosen GPU, 1 on a CPU
    gpus: str = ""  # the GPUs to run on, "0,1" (CUDA_VISIBLE_DEVICES of the ranks); empty = every visible one
    sharding: str = "auto"  # auto | ddp | fsdp: how the ranks hold the model (methods.kit.sharding)
    oom_retry: bool = True  # after an out-of-memory, retry once with a smaller micro-batch or checkpointing (jobs.oom)
    target: str = "local"  # local | slurm (workbench.jobs.targets)
    slurm: dict[str, Any] = field(default_factory=dict)  # [runtime.slurm]: partition, nodes, time... (jobs.slurm)


@dataclass
class JobSpec:
    id: str
    project: str
    method: str  # what the person chose (a method of the registry, or a job kind such as export)
    base_model: str
    params: dict[str, Any]
    train: list[DataSource]
    eval: list[DataSource] = field(default_factory=list)
    runtime: Runtime = field(default_factory=Runtime)
    model_path: str = ""  # the resolved HF folder, filled in by the worker
    base_ref: str = "base"  # how the person named the starting model (base, run:<id>, a path)
    created: str = field(default_factory=now_iso)
    notes: list[str] = field(default_factory=list)  # why the resolved values are what they are
    runner: str = ""  # "module:function" the worker runs with (spec, job context)
    # the memory the method form estimated at launch: {"bytes", "device", "mode"}; {} when none was shown
    estimate: dict[str, Any] = field(default_factory=dict)

    def save(self, run_dir: Path) -> None:
        data = asdict(self)
        job = {k: data.pop(k) for k in ("id", "project", "method", "runner", "base_model", "base_ref", "model_path", "created")}
        if not data["estimate"]:
            data.pop("estimate")
        write_toml(Path(run_dir) / layout.SPEC, {"job": job, **data})

    @classmethod
    def load(cls, run_dir: Path) -> "JobSpec":
        data = read_toml(Path(run_dir) / layout.SPEC)
        return cls(
            **data["job"],
            params=data.get("params", {}),
            train=[DataSource(**d) for d in data.get("train", [])],
            eval=[DataSource(**d) for d in data.get("eval", [])],
            runtime=Runtime(**data.get("runtime", {})),
            notes=data.get("notes", []),
            estimate=data.get("estimate", {}),
        )


def default_threads() -> int:
    """Torch threads of a worker, pinned so that they do not fight over the cores.

    Measured on 2 cores (bench/train_step.py): 2 threads train 1.47x faster than 1, and
    the app, which only reads files, stays responsive. Larger machines keep a core free.
    """
    cores = os.cpu_count() or 1
    return cores if cores <= 4 else cores - 1
