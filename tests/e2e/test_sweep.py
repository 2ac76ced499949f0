"""A sweep end to end: one real run per grid point on the tiny model, then the comparison report."""

from __future__ import annotations

import json
import math

import pytest

from tests.e2e.conftest import cli
from workbench.files import read_toml
from workbench.jobs import store
from workbench.plans import pipelines

pytestmark = pytest.mark.e2e


def test_two_learning_rates_run_one_after_another_and_compare(tiny_project):
    result = cli("sweep", tiny_project, "--method", "sft", "--grid", "learning_rate=1e-3,1e-2", "--grid", "lora_r=8",
                 "--set", "max_steps=3", "--set", "batch_size=4", "--set", "eval_steps=0", "--set", "save_steps=100",
                 "--set", "max_length=64", "--parallel", "2", "--wait")
    assert result.returncode == 0, result.stderr
    sweep_id = result.stdout.splitlines()[0].strip()

    info = pipelines.status(tiny_project, sweep_id)
    assert (info.state, info.message) == ("completed", "All 2 runs completed.")
    assert info.notes == ["No GPU visible: the runs go one at a time (asked for 2 at a time)."]
    starts = [e.time for e in pipelines.read_runner_events(info.plan.path) if isinstance(e, pipelines.StageStarted)]
    ends = [e.time for e in pipelines.read_runner_events(info.plan.path) if isinstance(e, pipelines.StageEnded)]
    assert len(starts) == 2 and ends[0] <= starts[1]  # on the CPU: one at a time
    for stage, lr in zip(info.stages, ("1e-3", "1e-2")):
        params = read_toml(stage.run.path / "job.toml")["params"]
        assert (params["learning_rate"], params["lora_r"], params["max_steps"]) == (float(lr), 8, 3)
        assert store.pipeline_of(stage.run.path)["kind"] == "sweep"

    lines = result.stdout.splitlines()
    assert lines[2].split()[:3] == ["learning_rate", "lora_r", "state"]
    assert len(lines) == 5  # the id, then the report: its title, the header, 2 rows

    report = cli("sweep", tiny_project, "report", sweep_id, "--json")
    assert report.returncode == 0, report.stderr
    rows = json.loads(report.stdout)["rows"]
    assert len(rows) == 2
    assert {r["point"]["learning_rate"] for r in rows} == {"1e-3", "1e-2"}
    assert all(r["state"] == "completed" and r["step"] == 3 for r in rows)
    assert all(math.isfinite(r["eval_loss"]) and math.isfinite(r["train_loss"]) for r in rows)
    assert all(r["best_eval_loss"] <= r["eval_loss"] and r["seconds_per_step"] > 0 for r in rows)
    assert rows[0]["eval_loss"] <= rows[1]["eval_loss"]
