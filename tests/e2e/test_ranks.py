"""Runs on several processes: two CPU ranks (DDP, gloo) under torchrun on the tiny model."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import cli, events, of_type, wait_for
from workbench import locations
from workbench.files import read_toml
from workbench.jobs import store
from workbench.run import events as ev
from workbench.run import layout

pytestmark = pytest.mark.e2e

SHORT = ["--set", "eval_fraction=0", "--set", "lora_dropout=0", "--set", "learning_rate=0.01", "--set", "warmup=0"]
LOSS_TOLERANCE = 1e-4  # measured: the two agree to 1e-6 (same batches; the gradient is all-reduced in fp32)


def losses(project: str, run_id: str) -> list[tuple[int, float, int]]:
    return [(e.step, e.loss, e.tokens_seen) for e in of_type(events(project, run_id), ev.Log)]


def stop_after_step_two(project: str, run_id: str, max_steps: int = 10):
    """Stop a running run once it logged step 2; (the step it stopped at, its checkpoint), checked to match."""
    wait_for(lambda: any(s >= 2 for s, _, _ in losses(project, run_id)), what="step 2")
    assert cli("stop", project, run_id).returncode == 0
    info = store.wait(project, run_id, timeout=180)
    assert info.state == "stopped", info.message
    checkpoint = layout.latest_checkpoint(locations.run_dir(project, run_id))
    stopped_at = of_type(events(project, run_id), ev.Finished)[-1].step
    assert checkpoint is not None and checkpoint.name == f"checkpoint-{stopped_at}" and stopped_at < max_steps
    return stopped_at, checkpoint


def test_two_ranks_train_like_one_with_the_same_global_batch(tiny_project):
    one = cli("train", tiny_project, "--wait", "--processes", "1", "--set", "max_steps=4", "--set", "batch_size=4",
              *SHORT)
    two = cli("train", tiny_project, "--wait", "--processes", "2", "--set", "max_steps=4", "--set", "batch_size=2",
              *SHORT)
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    one_id, two_id = one.stdout.split()[0], two.stdout.split()[0]
    alone, ranked = losses(tiny_project, one_id), losses(tiny_project, two_id)
    assert [s for s, _, _ in ranked] == [1, 2, 3, 4]
    assert [t for _, _, t in ranked] == [t for _, _, t in alone]  # the same records each step
    for (_, a, _), (_, b, _) in zip(alone, ranked):
        assert b == pytest.approx(a, abs=LOSS_TOLERANCE)
    assert alone[-1][1] < alone[0][1]  # it learned: the comparison is not of two untrained models
    spec = read_toml(locations.run_dir(tiny_project, two_id) / layout.SPEC)
    assert spec["runtime"]["processes"] == 2
    assert "Runs under torchrun on 2 processes, as asked, rank 0 writing events." in spec["notes"]
    assert "DDP (mode=lora): each process holds the whole model." in spec["notes"]
    assert spec["runtime"]["sharding"] == "ddp"
    started = of_type(events(tiny_project, two_id), ev.Started)
    assert len(started) == 1  # rank 0 alone writes


def test_a_two_rank_run_stops_at_one_step_and_resumes(tiny_project):
    started = cli("train", tiny_project, "--processes", "2", "--set", "max_steps=10", "--set", "batch_size=2",
                  "--set", "save_steps=1000", *SHORT)
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.split()[0]
    stopped_at, _ = stop_after_step_two(tiny_project, run_id)

    resumed = cli("resume", tiny_project, run_id, "--wait")
    assert resumed.returncode == 0, resumed.stderr
    got = events(tiny_project, run_id)
    assert of_type(got, ev.Started)[-1].resumed_from.endswith(f"checkpoint-{stopped_at}")
    assert of_type(got, ev.Finished)[-1].reason == "completed" and of_type(got, ev.Finished)[-1].step == 10
    assert store.get(tiny_project, run_id).state == "completed"


def test_bad_process_settings_are_refused_in_one_line(tiny_project):
    result = cli("train", tiny_project, "--gpus", "0,zero")
    assert result.returncode == 1
    assert result.stderr.strip() == "workbench: error: gpus='0,zero' is not a list of distinct GPU numbers such as 0,1."
    assert not store.list_runs(tiny_project)


def test_an_embedding_model_trains_on_two_ranks_and_measures_its_held_out_pairs(home, tiny_model, tmp_path):
    from tests.e2e.conftest import write_jsonl
    from workbench import project as projects
    from workbench.data.importer import import_file

    projects.create("notes", base_model=str(tiny_model))
    pairs = [{"anchor": f"Which note is about topic {i}?", "positive": f"A note about topic {i}."} for i in range(30)]
    import_file("notes", write_jsonl(tmp_path / "pairs.jsonl", pairs))
    result = cli("train", "notes", "--method", "embed", "--wait", "--processes", "2", "--set", "max_steps=3",
                 "--set", "batch_size=4")
    assert result.returncode == 0, result.stderr
    got = events("notes", result.stdout.split()[0])
    assert of_type(got, ev.Finished)[-1].reason == "completed"
    assert any(s.message.startswith("Held-out pairs: recall@1 ") for s in of_type(got, ev.Status))
