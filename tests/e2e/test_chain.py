"""A run can start from another run's result: its adapter, merged once, or one of its checkpoints."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import cli, events, of_type
from workbench import locations
from workbench.run import events as ev
from workbench.run.spec import JobSpec

pytestmark = pytest.mark.e2e

SHORT = ["--wait", "--set", "max_steps=2", "--set", "batch_size=4", "--set", "eval_steps=0",
         "--set", "max_length=64", "--set", "save_steps=100"]


def test_sft_starts_from_a_lora_run_and_from_a_checkpoint(lora_run):
    project, first, _ = lora_run
    result = cli("train", project, "--base", f"run:{first}", *SHORT)
    assert result.returncode == 0, result.stderr
    second = result.stdout.splitlines()[0].strip()
    spec = JobSpec.load(locations.run_dir(project, second))
    adapter = locations.run_dir(project, first) / "adapter"
    assert spec.base_ref == f"run:{first}" and spec.base_model == str(adapter)
    merged = locations.run_dir(project, first) / "merged"
    assert spec.model_path.startswith(str(merged)) and (merged.iterdir().__next__() / "config.json").exists()
    assert of_type(events(project, second), ev.Finished)[-1].reason == "completed"

    # The merged base is made once: a second run from the same adapter reuses it.
    stamp = next(merged.iterdir()).stat().st_mtime_ns
    result = cli("train", project, "--base", f"run:{first}/checkpoint-10", *SHORT)
    assert result.returncode == 0, result.stderr
    third = result.stdout.splitlines()[0].strip()
    assert JobSpec.load(locations.run_dir(project, third)).base_model.endswith("checkpoints/checkpoint-10")
    assert len(list(merged.iterdir())) == 2 and min(p.stat().st_mtime_ns for p in merged.iterdir()) == stamp


def test_a_bad_starting_model_is_refused_before_anything_starts(lora_run):
    project, first, _ = lora_run
    result = cli("train", project, "--base", "run:no-such-run", *SHORT)
    assert result.returncode == 1 and "has no run 'no-such-run'" in result.stderr
    result = cli("train", project, "--base", f"run:{first}/checkpoint-999", *SHORT)
    assert result.returncode == 1 and "no complete checkpoint 'checkpoint-999'" in result.stderr
