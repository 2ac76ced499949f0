"""Every name inside a run folder (and a plan folder, which a pipeline runner keeps the same way).

```
runs/<run-id>/
  job.toml          the resolved spec (run.spec)
  events.jsonl      one event a line (run.events)
  stderr.log        the worker's output and tracebacks
  pid, heartbeat    who runs it and when it last showed life (run.liveness)
  pipeline.toml     which pipeline or sweep started it, and at which stage
  result.toml       written once it completed
  checkpoints/checkpoint-N/   resumable states (complete once trainer_state.json is there)
  adapter/ | model/ what it produced; merged/ an adapter merged into its base once
  exports/          exports of this run
  samples/          the candidates of a sampling session
```
Light: no imports beyond the standard library.
"""

from __future__ import annotations

from pathlib import Path

SPEC = "job.toml"
EVENTS = "events.jsonl"
STDERR = "stderr.log"
PID = "pid"
HEARTBEAT = "heartbeat"
PIPELINE = "pipeline.toml"
RESULT = "result.toml"
CHECKPOINTS = "checkpoints"
CHECKPOINT_PREFIX = "checkpoint-"
CHECKPOINT_COMPLETE = "trainer_state.json"
ADAPTER = "adapter"
MODEL = "model"
MERGED = "merged"
EXPORTS = "exports"
OUTPUTS = (ADAPTER, MODEL)  # what a completed training run wrote, in the order they are looked for


def checkpoints(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINTS


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


def output(run_dir: Path) -> Path | None:
    """The adapter or model folder a training run wrote, if any."""
    for name in OUTPUTS:
        if (Path(run_dir) / name).exists():
            return Path(run_dir) / name
    return None
