"""Every name inside a run folder (and a plan folder, which a pipeline runner keeps the same way).

```
runs/<run-id>/
  job.toml          the resolved spec (run.spec)
  events.jsonl      one event a line (run.events)
  stderr.log        the worker's output and tracebacks
  lock              held (flock) by the one process working in the folder, for its whole life
  pid, heartbeat    who holds the lock and when it last showed life (run.liveness)
  pipeline.toml     which pipeline or sweep started it, and at which stage
  result.toml       written once it completed
  checkpoints/checkpoint-N/   resumable states (complete once trainer_state.json is there)
  adapter/ | model/ what it produced; merged/ an adapter merged into its base once
  evaluations/      its evaluations (workbench.evaluate): results.toml (the metrics, the settings, the
                    data they were taken on) and generations.jsonl (each held-out prompt's answer and
                    scores), both written once the evaluation completed; report.md. A project keeps the base
                    model's the same way, in `<project>/evaluations/base/` and `.../base-<k>shot/`
                    for the few-shot baseline. An evaluation job is a run folder of its own (method
                    `eval`): job.toml, events.jsonl, stderr.log, lock, pid, heartbeat
  exports/<format>/ what an export wrote (by default; a person may name another folder), and
                    `<format>.merged-hf/` beside it, an export's scratch folder while it runs
  exports/jobs/<export-id>/   one export job each: job.toml, events.jsonl, stderr.log, lock, pid, heartbeat
                    (a project's base model keeps its exports the same way, in `<project>/exports/`)
  prompts.json, candidates.jsonl, requests.jsonl   a sampling session's prompts, the groups
                    of candidates it sampled and the groups the ranking screen asked for
  generated.jsonl, synth_report.toml               a synthetic-data run's records and report
  tensorboard/, trackio/   the extra metric sinks a run was asked to report to (report_to)
  slurm-job.toml    a run sent to Slurm: its job ids and its newest life there (jobs.slurm)
  submitit/         submitit's files for that job: the pickled task, its sbatch script and logs
pipeline-runs/<plan-id>/
  plan.toml         the plan, and the same job.toml-less run files: events.jsonl, stderr.log, lock, pid, heartbeat
```
Light: no imports beyond the standard library.
"""

from __future__ import annotations

from pathlib import Path

SPEC = "job.toml"
EVENTS = "events.jsonl"
STDERR = "stderr.log"
LOCK = "lock"
PID = "pid"
HEARTBEAT = "heartbeat"
PIPELINE = "pipeline.toml"
RESULT = "result.toml"
CHECKPOINTS = "checkpoints"
CHECKPOINT_PREFIX = "checkpoint-"
CHECKPOINT_COMPLETE = "trainer_state.json"
STAGING = ".staging"  # inside checkpoints/: a checkpoint being written, renamed beside the others once whole
SPACE_RESERVE = ".space-reserve"  # disk blocks a run holds so that its last events fit on a full disk
ADAPTER = "adapter"
MODEL = "model"
MERGED = "merged"
EXPORTS = "exports"
EXPORT_JOBS = "jobs"  # inside exports/
EXPORT_MARK = ".workbench-export.toml"  # in an export's output folder: which job wrote it, and whether it completed
SCRATCH_SUFFIX = ".merged-hf"  # an export's scratch folder, beside its output, removed when it ends
EVAL = "evaluations"  # a run's (or a project's) evaluations (not `eval`, the word of the split)
EVAL_RESULTS = "results.toml"  # inside evaluations/ (or evaluations/<subject>/ of a project)
EVAL_GENERATIONS = "generations.jsonl"  # beside it
EVAL_REPORT = "report.md"  # a run's report (`workbench report`), in its evaluations/
PROMPTS = "prompts.json"
CANDIDATES = "candidates.jsonl"
REQUESTS = "requests.jsonl"
SYNTH_RECORDS = "generated.jsonl"
SYNTH_REPORT = "synth_report.toml"
TENSORBOARD = "tensorboard"  # TensorBoard event files of a run that reports to it (params report_to)
TRACKIO = "trackio"  # Trackio's database of a run that reports to it
SLURM_JOB = "slurm-job.toml"  # a Slurm run's job ids and its newest life on the cluster
SUBMITIT = "submitit"  # submitit's folder of a Slurm run (task pickle, sbatch script, logs)
PLAN = "plan.toml"
OUTPUTS = (ADAPTER, MODEL)  # what a completed training run wrote, in the order they are looked for


def checkpoints(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINTS


def checkpoint_name(step: int) -> str:
    """`checkpoint-N`, the folder name of the checkpoint at step N."""
    return f"{CHECKPOINT_PREFIX}{step}"


def checkpoint(run_dir: Path, step: int) -> Path:
    return checkpoints(run_dir) / checkpoint_name(step)


def checkpoint_step(folder: Path) -> int | None:
    """N of a `checkpoint-N` folder, or None for any other name."""
    name = Path(folder).name
    if not name.startswith(CHECKPOINT_PREFIX) or not name[len(CHECKPOINT_PREFIX):].isdigit():
        return None
    return int(name[len(CHECKPOINT_PREFIX):])


def is_complete_checkpoint(folder: Path) -> bool:
    return checkpoint_step(folder) is not None and (Path(folder) / CHECKPOINT_COMPLETE).exists()


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """The complete checkpoints of a run, oldest first."""
    found = [p for p in checkpoints(run_dir).glob(CHECKPOINT_PREFIX + "*") if p.is_dir() and is_complete_checkpoint(p)]
    return sorted(found, key=checkpoint_step)


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = complete_checkpoints(run_dir)
    return found[-1] if found else None


def output_for(run_dir: Path, adapter: bool) -> Path:
    """Where a training run writes what it produced: `adapter/` for an adapter, else `model/`."""
    return Path(run_dir) / (ADAPTER if adapter else MODEL)


def exports(run_dir: Path) -> Path:
    return Path(run_dir) / EXPORTS


def export_jobs(folder: Path) -> Path:
    """The job folders of the exports of a run (or of a project's base model, `folder` being the project)."""
    return exports(folder) / EXPORT_JOBS


def evaluations(folder: Path) -> Path:
    """The evaluations of a run (or, `folder` being a project, the folder of its base model's)."""
    return Path(folder) / EVAL


def scratch(out: Path) -> Path:
    """The scratch folder of an export writing to `out` (the merged HF model a GGUF is converted from)."""
    return Path(out).with_name(Path(out).name + SCRATCH_SUFFIX)


def output(run_dir: Path) -> Path | None:
    """The adapter or model folder a training run wrote, if any."""
    for name in OUTPUTS:
        if (Path(run_dir) / name).exists():
            return Path(run_dir) / name
    return None
