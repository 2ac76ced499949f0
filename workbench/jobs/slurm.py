"""Runs on a Slurm cluster: submitted through submitit, followed from the run folder like a local run.

A run whose `runtime.target` is `slurm` keeps its Slurm settings in `[runtime.slurm]` of its job.toml
(`SlurmSettings`). `submit` hands submitit a `slurm_task.WorkerTask`: on the allocation it runs the same
worker a local run runs (under torchrun when the allocation has several GPUs), which writes its events
into the run folder on the shared filesystem; this process reads them as it reads a local run's.
The run folder records the Slurm job (`layout.SLURM_JOB`): the job id of every submission, and when
the newest life in the allocation began.

The state (`follow_state`) comes from the events first and from Slurm's own word second (sacct through
submitit's watcher, squeue when accounting is off): queued / starting / running while Slurm holds the job
though no lock is visible from this machine; cancelled when Slurm cancelled it before the worker wrote
an end; failed when the job died without one (time limit, node failure, out of memory).

Stop (`stop`): a queued job is cancelled; a running one is asked to save first (`scancel --signal=TERM`
reaches every process of the job: the worker checkpoints, writes `finished(stopped)` and the job ends);
a second stop cancels it at once. When the time limit comes Slurm sends SIGUSR2 `grace` seconds early
(`#SBATCH --signal=USR2@grace`); the task asks the worker to save and requeues the job, whose next life
resumes from that checkpoint.

Tested with submitit's local executor and faked Slurm commands, not on a real cluster.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from workbench.jobs.claims import LaunchError, claim
from workbench.jobs.slurm_record import Record, read_record, record_path, write_record  # noqa: F401 - the run's record
from workbench.run import events as ev
from workbench.run import layout
from workbench.run.spec import JobSpec

CLUSTERS = ("slurm", "local")  # local: submitit's local executor, the same path on this machine (tests)
CLUSTER_ENV = "WORKBENCH_SLURM_CLUSTER"  # `local`: Slurm runs go through submitit's local executor
MAX_REQUEUES = 20  # time limits a run may reach, each ending in a checkpoint and a requeue
WATCH_SECONDS = 15  # the longest a state read from Slurm is reused before sacct is asked again
QUEUED = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "RESIZING", "SUSPENDED",
          "PREEMPTED", "RESV_DEL_HOLD", "SPECIAL_EXIT"}
RUNNING = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING"}
FAILED = {"FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "REVOKED"}


class SlurmError(LaunchError):
    """A Slurm run that cannot be submitted or followed as asked; the message says why, for a person."""

    kind = "slurm"


@dataclass
class SlurmSettings:
    """Where and how long a run gets on the cluster: `[runtime.slurm]` of its job.toml."""

    partition: str = ""  # empty: the cluster's default partition
    nodes: int = 1
    gpus_per_node: int = 1
    time: str = "1:00:00"  # Slurm's time format: minutes, H:MM:SS, or D-HH[:MM[:SS]]
    account: str = ""
    extra: list[str] = field(default_factory=list)  # more `#SBATCH` lines ("--qos=high", "#SBATCH --mem=0")
    grace: int = 120  # seconds before the time limit when the job is told to save and requeue

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SlurmSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SlurmError(f"Unknown Slurm setting '{unknown[0]}': the settings are {', '.join(sorted(known))}.")
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        for name in ("nodes", "gpus_per_node", "grace"):
            value = getattr(self, name)
            try:
                setattr(self, name, int(value))
            except (TypeError, ValueError):
                raise SlurmError(f"Slurm setting {name} must be a whole number, not '{value}'.") from None
        if self.nodes < 1 or self.gpus_per_node < 0 or self.grace < 0:
            raise SlurmError("Slurm settings need nodes >= 1, gpus_per_node >= 0 and grace >= 0.")
        if isinstance(self.extra, str):
            self.extra = [self.extra]
        self.minutes()  # a time Slurm would refuse is refused here
        extra_parameters(self.extra)
        if self.minutes() * 60 <= self.grace:
            raise SlurmError(f"The time limit {self.time} leaves no time to train before the {self.grace} s "
                             "given to save at its end.")

    def minutes(self) -> int:
        return minutes(self.time)

    @property
    def world_size(self) -> int:
        return self.nodes * max(self.gpus_per_node, 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def minutes(text: str) -> int:
    """Slurm's time limit (`90`, `1:30:00`, `2-00`, `1-12:00:00`) in whole minutes (rounded up)."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", str(text).strip())
    if not match:
        raise SlurmError(f"Time limit '{text}' is not in Slurm's format (minutes, H:MM:SS, or D-HH:MM:SS).")
    days, a, b, c = (int(g) if g else None for g in match.groups())
    if days is not None:  # D-HH, D-HH:MM, D-HH:MM:SS
        seconds = days * 86400 + a * 3600 + (b or 0) * 60 + (c or 0)
    elif c is not None:  # H:MM:SS
        seconds = a * 3600 + b * 60 + c
    elif b is not None:  # MM:SS
        seconds = a * 60 + b
    else:  # MM
        seconds = a * 60
    if seconds <= 0:
        raise SlurmError(f"Time limit '{text}' is zero.")
    return -(-seconds // 60)


def extra_parameters(lines: list[str]) -> dict[str, Any]:
    """Extra `#SBATCH` lines as submitit's `additional_parameters`: `--qos=high` -> {"qos": "high"}."""
    out: dict[str, Any] = {}
    for line in lines:
        text = str(line).strip().removeprefix("#SBATCH").strip()
        match = re.fullmatch(r"--([A-Za-z][\w-]*)(?:[= ]\s*(\S.*))?", text)
        if not match:
            raise SlurmError(f"Extra Slurm line '{line}' is not an sbatch option such as '--qos=high'.")
        out[match.group(1)] = match.group(2).strip() if match.group(2) else True
    return out


def settings_of(spec: JobSpec) -> SlurmSettings:
    return SlurmSettings.from_dict(dict(spec.runtime.slurm or {}))


# the record in the run folder -------------------------------------------------------


# submission ---------------------------------------------------------------------------


def executor(run_dir: Path, settings: SlurmSettings, name: str, cluster: str = "slurm"):
    """The submitit executor of a run: its files in the run folder's `layout.SUBMITIT`."""
    import submitit

    folder = Path(run_dir) / layout.SUBMITIT
    if cluster == "local":
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=settings.minutes(), signal_delay_s=settings.grace, gpus_per_node=0)
        return ex
    try:
        ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=MAX_REQUEUES)
    except RuntimeError:
        raise SlurmError("srun is not on PATH: submit from a machine of the Slurm cluster (its login node).") from None
    ex.update_parameters(**sbatch_parameters(settings, name))
    return ex



def sbatch_parameters(settings: SlurmSettings, name: str) -> dict[str, Any]:
    """submitit's SlurmExecutor parameters: one task per node (torchrun starts a process per GPU)."""
    params: dict[str, Any] = {"job_name": name, "nodes": settings.nodes, "ntasks_per_node": 1,
                              "time": settings.minutes(), "signal_delay_s": settings.grace,
                              "additional_parameters": {"requeue": True, **extra_parameters(settings.extra)}}
    if settings.partition:
        params["partition"] = settings.partition
    if settings.gpus_per_node:
        params["gpus_per_node"] = settings.gpus_per_node
    if settings.account:
        params["account"] = settings.account
    return params


def start(spec: JobSpec, run_dir: Path) -> Path:
    """Write the spec in the run's folder (under its lock, as a local start does) and submit its job. A job
    Slurm refuses leaves the run failed, its `error` event saying why."""
    with claim(run_dir, f"Job {spec.id}"):
        spec.save(run_dir)
    try:
        submit(spec, run_dir)
    except SlurmError as exc:
        writer = ev.EventWriter(Path(run_dir) / layout.EVENTS)
        try:
            writer.emit(ev.Error(message=str(exc), kind=SlurmError.kind), sync=True)
        finally:
            writer.close()
        raise
    return run_dir


def submit(spec: JobSpec, run_dir: Path, cluster: str | None = None) -> Record:
    """Submit the worker of the run in `run_dir` (its spec saved there); the Slurm job recorded in the folder.
    The job resumes from the run's latest checkpoint when it has one (a resumed run, or a requeued job).

    `cluster` is `slurm`, or `local` for submitit's local executor (the same path, on this machine);
    by default `$WORKBENCH_SLURM_CLUSTER`, else `slurm`."""
    from workbench.jobs.slurm_task import WorkerTask

    cluster = cluster or os.environ.get(CLUSTER_ENV, "slurm")
    if cluster not in CLUSTERS:
        raise SlurmError(f"{CLUSTER_ENV} is '{cluster}'; it can be {' or '.join(CLUSTERS)}.")
    settings = settings_of(spec)
    ex = executor(run_dir, settings, f"workbench-{spec.id}", cluster)
    task = WorkerTask(str(Path(run_dir).resolve()), gpus_per_node=settings.gpus_per_node, grace=settings.grace)
    from submitit.core.utils import FailedJobError, FailedSubmissionError

    try:
        job = ex.submit(task)
    except (FailedJobError, FailedSubmissionError, OSError) as exc:  # sbatch's refusal, or no sbatch at all
        said = str(exc).strip().splitlines()
        raise SlurmError(f"sbatch refused the job: {said[-1] if said else type(exc).__name__}") from None
    before = read_record(run_dir)
    record = Record(job_id=str(job.job_id), cluster=cluster, submitted=time.time(),
                    jobs=[j for j in (before.jobs if before else []) if j != str(job.job_id)] + [str(job.job_id)])
    if before is not None and before.job_id == record.job_id:  # the job started already and wrote its life
        record.life_started, record.host, record.task_pid = before.life_started, before.host, before.task_pid
    write_record(run_dir, record)
    forget_states()
    return record



# state --------------------------------------------------------------------------------

_watcher = None
_squeue: dict[str, tuple[float, str]] = {}


def job_state(record: Record) -> str:
    """Slurm's state of the run's job, upper case ("PENDING", "RUNNING", "CANCELLED"...), or "UNKNOWN".

    sacct through submitit's watcher (which asks once for every job followed, at most every
    WATCH_SECONDS); squeue when sacct does not know the job (accounting off, or the job too new)."""
    global _watcher
    if record.cluster == "local":  # the job is submitit's controller process on this machine
        return "RUNNING" if _controller_alive(record.job_id) else "UNKNOWN"
    from submitit.slurm.slurm import SlurmInfoWatcher

    if _watcher is None:
        _watcher = SlurmInfoWatcher(delay_s=WATCH_SECONDS)
    state = _watcher.get_state(record.job_id).upper().split(" ")[0].rstrip("+")
    if state == "UNKNOWN":
        state = squeue_state(record.job_id)
    return state


def _controller_alive(job_id: str) -> bool:
    try:
        stat = Path(f"/proc/{int(job_id)}/stat").read_text()
        command = Path(f"/proc/{int(job_id)}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z" and b"submitit" in command


def squeue_state(job_id: str) -> str:
    now = time.time()
    seen, state = _squeue.get(job_id, (0.0, ""))
    if now - seen < WATCH_SECONDS:
        return state
    try:
        out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
        state = out.stdout.strip().splitlines()[0].upper() if out.returncode == 0 and out.stdout.strip() else "UNKNOWN"
    except (OSError, subprocess.TimeoutExpired):
        state = "UNKNOWN"
    _squeue[job_id] = (now, state)
    return state


def forget_states() -> None:
    """Ask Slurm afresh on the next read (after a stop or a submission)."""
    global _watcher
    _watcher = None
    _squeue.clear()


def follow_state(info) -> None:
    """Complete a run's state (a `store.RunInfo`, derived from its events and its lock) with what Slurm says
    of its job. The events win where they have said how the worker ended."""
    record = read_record(info.path)
    if record is None:
        return
    info.slurm_job = record.job_id
    if info.alive:
        return  # the worker's lock is seen from here: the local rules hold
    state = job_state(record)
    ended = info.state in ("completed", "failed", "stopped")
    ended_at = _last_end(info.events)
    requeued = info.state == "stopped" and record.requeued > record.life_started  # this life met the time limit
    if (state in QUEUED or (requeued and state in RUNNING)) and info.state != "completed":
        info.state, info.alive = "queued", True
        info.message = (f"requeued at its time limit (Slurm job {record.job_id}): it resumes from its checkpoint"
                        if requeued else f"queued on Slurm (job {record.job_id}, {state.lower()})")
    elif state in RUNNING:
        new_life = record.life_started > ended_at
        if ended and not new_life:
            return  # the worker wrote its end and the job is closing
        started = _started_since(info.events, record.life_started)
        info.state, info.alive = ("running" if started else "starting"), True
        info.message = f"on Slurm (job {record.job_id}{f', {record.host}' if record.host else ''})"
    elif state == "CANCELLED" and not ended:
        info.state, info.alive = "cancelled", False
        info.message = f"Slurm job {record.job_id} was cancelled before the worker wrote its end"
    elif state in FAILED and not ended:
        info.state, info.alive = "failed", False
        info.message = (f"Slurm job {record.job_id} ended {state.lower()} before the worker wrote its end; "
                        f"see {Path(info.path) / layout.SUBMITIT}")
    elif info.state == "lost" and state == "UNKNOWN":
        info.message = f"Slurm does not know job {record.job_id} (sacct and squeue gave no state)"


def _last_end(events: list[ev.Event]) -> float:
    ends = [e.time for e in events if isinstance(e, (ev.Finished, ev.Error))]
    return ends[-1] if ends else 0.0


def _started_since(events: list[ev.Event], since: float) -> bool:
    return any(isinstance(e, ev.Started) and e.time >= since - 1.0 for e in events)


# stop ---------------------------------------------------------------------------------


def stop(run_dir: Path, info) -> str:
    """Stop the run's Slurm job: cancel it while queued; ask a running one to save (SIGTERM to its processes,
    the job ends once the worker has written its end); cancel it when asked a second time. What was done,
    in words."""
    record = read_record(run_dir)
    if record is None:
        raise SlurmError(f"{run_dir} records no Slurm job.")
    if info.state == "queued":
        scancel(record.job_id)
        done = "cancelled while queued"
    elif record.stop_asked and record.stop_asked > record.life_started:
        scancel(record.job_id)
        done = "asked a second time: cancelled at once"
    else:
        scancel(record.job_id, "--signal=TERM")
        record.stop_asked = time.time()
        write_record(run_dir, record)
        done = "asked to save a checkpoint; the Slurm job ends once it has"
    forget_states()
    return done


def scancel(job_id: str, *flags: str) -> None:
    try:
        out = subprocess.run(["scancel", *flags, job_id], capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SlurmError(f"scancel could not run: {exc}") from None
    if out.returncode != 0:
        said = (out.stderr or out.stdout).strip().splitlines()
        raise SlurmError(f"scancel refused: {said[-1] if said else f'exit {out.returncode}'}")

