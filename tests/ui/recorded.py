"""The recorded run folders of tests/ui/fixtures/runs, copied into a test's projects home."""

from __future__ import annotations

import shutil
from pathlib import Path

from workbench import locations

RUNS = Path(__file__).parent / "fixtures" / "runs"


def recorded_run(method: str, project: str = "demo", run_id: str | None = None) -> Path:
    """A copy of the recorded `method` run (grpo, dpo, sft, ppo) as run `run_id` of `project`."""
    run_dir = locations.run_dir(project, run_id or f"{method}-run")
    run_dir.mkdir(parents=True)
    for name in ("job.toml", "events.jsonl"):
        shutil.copy(RUNS / method / name, run_dir / name)
    (run_dir / "checkpoints").mkdir()
    return run_dir
