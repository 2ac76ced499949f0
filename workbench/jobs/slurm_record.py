"""The Slurm job of a run, as recorded in its folder (`layout.SLURM_JOB`): which job, every submission, the
stop asked, the life the allocation runs. Read and written by the submitting side and by the job itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from workbench.files import read_toml, write_toml
from workbench.run import layout


@dataclass
class Record:
    job_id: str
    cluster: str = "slurm"
    submitted: float = 0.0
    jobs: list[str] = field(default_factory=list)  # every submission of the run, the newest last
    stop_asked: float = 0.0  # when a stop asked the running job to save (a second stop cancels it)
    life_started: float = 0.0  # when the newest life in the allocation began (written by the job)
    host: str = ""
    task_pid: int = 0  # the submitit task of that life, on `host`
    requeued: float = 0.0  # when that life was told of the time limit (it saves, and the job is requeued)


def record_path(run_dir: Path) -> Path:
    return Path(run_dir) / layout.SLURM_JOB


def read_record(run_dir: Path) -> Record | None:
    try:
        data = read_toml(record_path(run_dir))
    except (OSError, ValueError):
        return None
    job, life = data.get("slurm", {}), data.get("life", {})
    if not job.get("job_id"):
        return None
    return Record(job_id=str(job["job_id"]), cluster=job.get("cluster", "slurm"), submitted=job.get("submitted", 0.0),
                  jobs=[str(j) for j in job.get("jobs", [])], stop_asked=job.get("stop_asked", 0.0),
                  life_started=life.get("started", 0.0), host=life.get("host", ""), task_pid=life.get("pid", 0),
                  requeued=life.get("requeued", 0.0))


def write_record(run_dir: Path, record: Record) -> None:
    write_toml(record_path(run_dir), {
        "slurm": {"job_id": record.job_id, "cluster": record.cluster, "submitted": record.submitted,
                  "jobs": record.jobs, "stop_asked": record.stop_asked},
        "life": {"started": record.life_started, "host": record.host, "pid": record.task_pid,
                 "requeued": record.requeued}})
