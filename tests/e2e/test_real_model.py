"""The real embedded model (SmolLM2-135M-Instruct) trains on the shipped demo data."""

from __future__ import annotations

import math
import shutil

import pytest

from tests.e2e.conftest import REPO, cli, events, of_type
from workbench import locations
from workbench.run import events as ev

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_few_steps_on_the_demo_give_a_finite_loss_and_an_adapter(home):
    shutil.copytree(REPO / "projects" / "demo", home / "demo", ignore=shutil.ignore_patterns("runs", "eval-*.toml"))
    result = cli("train", "demo", "--wait", "--dataset", "citations-train", "--set", "max_steps=3",
                 "--set", "max_length=128", "--set", "batch_size=2", "--set", "eval_fraction=0",
                 timeout=600)
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.splitlines()[0].strip()
    got = events("demo", run_id)
    begin = of_type(got, ev.TrainBegin)[0]
    assert begin.total_params > 100_000_000 and begin.train_records == 400
    losses = [log.loss for log in of_type(got, ev.Log)]
    assert len(losses) == 3 and all(math.isfinite(loss) and loss > 0 for loss in losses)
    adapter = locations.run_dir("demo", run_id) / "adapter"
    assert (adapter / "adapter_config.json").exists() and (adapter / "adapter_model.safetensors").stat().st_size > 0
