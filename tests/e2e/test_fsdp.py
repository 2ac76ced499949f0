"""Full fine-tuning sharded over two CPU ranks (FSDP2 on gloo, `--set-runtime sharding=fsdp`) on the tiny model."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import cli, events, of_type, wait_for
from workbench import locations
from workbench.files import read_toml
from workbench.jobs import store
from workbench.run import events as ev
from workbench.run import layout

pytestmark = pytest.mark.e2e

FSDP = ["--processes", "2", "--set-runtime", "sharding=fsdp", "--set", "mode=full"]
SHORT = ["--set", "eval_fraction=0", "--set", "learning_rate=0.01", "--set", "warmup=0"]
LOSS_TOLERANCE = 1e-4  # measured: within 1e-6 of one rank's loss over 4 steps (gradients reduce-scattered in fp32)
WEIGHT_TOLERANCE = 1e-4  # measured: the saved weights within 7e-6 of one rank's, having moved by 0.025


def losses(project: str, run_id: str) -> list[tuple[int, float, int]]:
    return [(e.step, e.loss, e.tokens_seen) for e in of_type(events(project, run_id), ev.Log)]


def test_two_fsdp_ranks_train_and_save_like_one_rank_with_the_same_global_batch(tiny_project):
    import torch

    from workbench import models

    one = cli("train", tiny_project, "--wait", "--processes", "1", "--set", "mode=full", "--set", "max_steps=4",
              "--set", "batch_size=4", *SHORT)
    two = cli("train", tiny_project, "--wait", *FSDP, "--set", "max_steps=4", "--set", "batch_size=2",
              "--set", "save_steps=2", *SHORT)
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    one_id, two_id = one.stdout.split()[0], two.stdout.split()[0]
    alone, sharded = losses(tiny_project, one_id), losses(tiny_project, two_id)
    assert [s for s, _, _ in sharded] == [1, 2, 3, 4]
    assert [t for _, _, t in sharded] == [t for _, _, t in alone]  # the same records each step
    for (_, a, _), (_, b, _) in zip(alone, sharded):
        assert b == pytest.approx(a, abs=LOSS_TOLERANCE)
    assert alone[-1][1] < alone[0][1] - 0.1  # it learned: the comparison is not of two untrained models

    run_dir = locations.run_dir(tiny_project, two_id)
    spec = read_toml(run_dir / layout.SPEC)
    assert spec["runtime"]["sharding"] == "fsdp" and spec["runtime"]["processes"] == 2
    assert ("FSDP, as asked: weights, gradients and optimizer state sharded over the 2 processes (FSDP2)."
            in spec["notes"])
    checkpoint = layout.latest_checkpoint(run_dir)
    assert checkpoint.name == "checkpoint-4" and (checkpoint / "pytorch_model_fsdp_0").is_dir()  # each rank's shard

    # the final model is whole, gathered from the two ranks' shards, and trained as one rank trains it
    mine = models.load_causal_lm(run_dir / layout.MODEL).state_dict()
    theirs = models.load_causal_lm(locations.run_dir(tiny_project, one_id) / layout.MODEL).state_dict()
    assert mine.keys() == theirs.keys()
    worst = max((mine[k] - theirs[k]).abs().max().item() for k in mine)
    assert worst < WEIGHT_TOLERANCE
    base = models.load_causal_lm(spec["job"]["model_path"]).state_dict()
    assert max((mine[k] - base[k]).abs().max().item() for k in mine) > 0.01  # it moved
    assert torch.equal(mine["lm_head.weight"], mine["model.embed_tokens.weight"])  # still tied


def test_an_fsdp_run_stops_at_one_step_and_resumes_from_its_sharded_checkpoint(tiny_project):
    started = cli("train", tiny_project, *FSDP, "--set", "max_steps=10", "--set", "batch_size=2",
                  "--set", "save_steps=1000", *SHORT)
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.split()[0]
    wait_for(lambda: any(s >= 2 for s, _, _ in losses(tiny_project, run_id)), what="step 2")
    assert cli("stop", tiny_project, run_id).returncode == 0
    info = store.wait(tiny_project, run_id, timeout=180)
    assert info.state == "stopped", info.message
    checkpoint = layout.latest_checkpoint(locations.run_dir(tiny_project, run_id))
    stopped_at = of_type(events(tiny_project, run_id), ev.Finished)[-1].step
    assert checkpoint is not None and checkpoint.name == f"checkpoint-{stopped_at}" and stopped_at < 10
    assert (checkpoint / "pytorch_model_fsdp_0").is_dir()

    resumed = cli("resume", tiny_project, run_id, "--wait")
    assert resumed.returncode == 0, resumed.stderr
    got = events(tiny_project, run_id)
    assert of_type(got, ev.Started)[-1].resumed_from.endswith(f"checkpoint-{stopped_at}")
    assert of_type(got, ev.Finished)[-1].reason == "completed" and of_type(got, ev.Finished)[-1].step == 10
    steps = [s for s, _, _ in losses(tiny_project, run_id)]
    assert steps[-1] == 10 and stopped_at + 1 in steps  # training went on from the step after the checkpoint
    assert (locations.run_dir(tiny_project, run_id) / layout.MODEL / "config.json").exists()


def test_fsdp_with_an_adapter_is_refused_in_one_line(tiny_project):
    result = cli("train", tiny_project, "--processes", "2", "--set-runtime", "sharding=fsdp", "--set", "mode=lora")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "workbench: error: sharding=fsdp shards full fine-tuning; mode=lora trains few enough weights for each GPU "
        "to hold them: use sharding=ddp (or auto), or mode=full.")
    result = cli("train", tiny_project, "--set-runtime", "sharding=zero3")
    assert result.stderr.strip() == "workbench: error: sharding='zero3' is unknown: it can be auto, ddp, fsdp."
    assert not store.list_runs(tiny_project)
