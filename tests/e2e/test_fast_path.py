"""The fast path in a real run: the resolved choices and their reasons in job.toml, packing asked on the CPU."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import events, of_type
from workbench import locations
from workbench.cli.main import main
from workbench.files import read_toml
from workbench.jobs import store
from workbench.run import events as ev

pytestmark = pytest.mark.e2e


def test_a_packed_run_trains_and_records_what_ran(tiny_project, capsys):
    assert main(["train", tiny_project, "--wait", "--set", "max_steps=2", "--set", "eval_fraction=0",
                 "--set", "packing=on", "--set", "batch_size=2"]) == 0
    run = store.list_runs(tiny_project)[0]
    spec = read_toml(locations.run_dir(tiny_project, run.id) / "job.toml")
    assert {k: spec["params"][k] for k in ("packing", "attention", "liger", "compile")} == \
        {"packing": "on", "attention": "sdpa", "liger": "off", "compile": False}
    assert "Attention: SDPA (flash-attention needs a CUDA GPU)." in spec["notes"]
    logs = of_type(events(tiny_project, run.id), ev.Log)
    # 40 records of ~45 tokens, packed into rows of up to 512: two rows a step hold far more than two records
    assert logs[-1].step == 2 and logs[-1].tokens_seen > 2 * 2 * 60
