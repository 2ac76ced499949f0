"""Pipelines end to end: the real runner launches real workers on the tiny model, stage after stage."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import cli, events, of_type, wait_for, write_jsonl
from workbench import locations
from workbench.data.importer import import_file
from workbench.files import read_toml
from workbench.jobs import store
from workbench.plans import pipelines
from workbench.run import events as ev
from workbench.run.layout import latest_checkpoint

pytestmark = pytest.mark.e2e

PAIRS = [{"prompt": f"What is {i} plus one?", "chosen": f"{i} plus one is {i + 1}.", "rejected": "I do not know."}
         for i in range(30)]
SFT = "sft:mode=lora,max_steps=3,batch_size=4,eval_steps=0,save_steps=100,max_length=64@chat"
DPO = "dpo:max_steps=3,batch_size=4,eval_steps=0,save_steps=100,max_length=64@prefs"


@pytest.fixture
def two_kinds(tiny_project, tmp_path) -> str:
    """The tiny project (40 chat records as 'chat') with 30 preference pairs as 'prefs'."""
    import_file(tiny_project, write_jsonl(tmp_path / "prefs.jsonl", PAIRS))
    return tiny_project


def define(project: str, name: str, *stages: str) -> None:
    result = cli("pipeline", project, "define", name, *[arg for s in stages for arg in ("--stage", s)])
    assert result.returncode == 0, result.stderr


def test_sft_then_dpo_on_the_sft_result(two_kinds):
    define(two_kinds, "prep", SFT, DPO)
    result = cli("pipeline", two_kinds, "run", "prep", "--wait")
    assert result.returncode == 0, result.stderr
    plan_id = result.stdout.splitlines()[0].strip()

    info = pipelines.status(two_kinds, plan_id)
    assert (info.state, info.alive, info.message) == ("completed", False, "All 2 stages completed.")
    sft, dpo = info.stages
    assert (sft.state, dpo.state) == ("completed", "completed")
    assert (sft.run.method, dpo.run.method) == ("sft", "dpo")
    assert (sft.run.step, dpo.run.step) == (3, 3)

    job = read_toml(dpo.run.path / "job.toml")["job"]  # the DPO run starts from the SFT run's adapter
    assert job["base_ref"] == f"run:{sft.run_id}"
    assert job["base_model"] == str(locations.run_dir(two_kinds, sft.run_id) / "adapter")
    assert (dpo.run.path / "adapter" / "adapter_config.json").exists()
    assert store.pipeline_of(dpo.run.path) == {"plan": plan_id, "kind": "pipeline", "name": "prep", "stage": 2,
                                              "stages": 2}
    assert any(f"of pipeline 'prep' ({plan_id})" in note for note in read_toml(dpo.run.path / "job.toml")["notes"])

    kinds = [(e.type, getattr(e, "stage", None)) for e in pipelines.read_runner_events(info.plan.path)]
    assert kinds == [("runner_started", None), ("stage_started", 0), ("stage_ended", 0), ("stage_started", 1),
                     ("stage_ended", 1), ("runner_finished", -1)]
    assert "completed: All 2 stages completed." in result.stdout
    status = cli("pipeline", two_kinds, "status")
    assert status.returncode == 0 and f"{plan_id}\tpipeline 'prep'\tcompleted" in status.stdout
    listed = cli("pipeline", two_kinds, "list")
    assert f"{plan_id}\tprep\tcompleted\tstage 2/2 dpo completed" in listed.stdout


def test_a_failing_stage_stops_the_pipeline_and_names_the_stage(two_kinds):
    # 16 tokens cannot hold the chat template and the question: no answer token is left to learn
    define(two_kinds, "broken", SFT.replace("max_length=64", "max_length=16"), DPO)
    result = cli("pipeline", two_kinds, "run", "broken", "--wait")
    assert result.returncode == 1
    plan_id = result.stdout.splitlines()[0].strip()
    err = result.stderr.strip()
    assert err.startswith(f"workbench: error: Pipeline run {plan_id} failed: Stage 1 (sft) failed: ") and "\n" not in err

    info = pipelines.status(two_kinds, plan_id)
    assert (info.state, info.stage, info.resumable) == ("failed", 0, True)
    assert [s.state for s in info.stages] == ["failed", "pending"]
    error = of_type(events(two_kinds, info.stages[0].run_id), ev.Error)[0]
    assert error.kind == "bad_data"
    assert info.message == f"Stage 1 (sft) failed: {error.message}"
    assert len(store.list_runs(two_kinds)) == 1  # stage 2 never started


def test_stop_then_resume_continues_the_stopped_stage(two_kinds):
    define(two_kinds, "long", SFT.replace("max_steps=3", "max_steps=40").replace("save_steps=100", "save_steps=1000"),
           DPO)
    result = cli("pipeline", two_kinds, "run", "long")
    assert result.returncode == 0, result.stderr
    plan_id = result.stdout.strip()
    first = wait_for(lambda: (s := pipelines.status(two_kinds, plan_id).stages[0]).run and s.run.step >= 2 and s,
                     what="stage 1 at step 2")

    stopped = cli("pipeline", two_kinds, "stop", plan_id, "--wait")
    assert stopped.returncode == 0, stopped.stderr
    info = pipelines.status(two_kinds, plan_id)
    assert (info.state, info.stage) == ("stopped", 0)
    assert info.message.startswith("Stage 1 (sft) stopped")
    run = store.get(two_kinds, first.run_id)
    assert run.state == "stopped" and latest_checkpoint(run.path) is not None
    stopped_at = run.step
    assert stopped_at < 40

    resumed = cli("pipeline", two_kinds, "resume", plan_id, "--wait", timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    info = pipelines.status(two_kinds, plan_id)
    assert info.state == "completed" and info.stages[0].run_id == first.run_id  # the same run, resumed
    got = events(two_kinds, first.run_id)
    assert of_type(got, ev.Started)[-1].resumed_from.endswith(f"checkpoint-{stopped_at}")
    assert of_type(got, ev.Log)[-1].step == 40
    assert read_toml(info.stages[1].run.path / "job.toml")["job"]["base_ref"] == f"run:{first.run_id}"
    actions = [e.action for e in pipelines.read_runner_events(info.plan.path) if isinstance(e, pipelines.StageStarted)]
    assert actions == ["started", "resumed", "started"]
    assert cli("pipeline", two_kinds, "resume", plan_id).stderr.strip().endswith("has completed; nothing to resume.")
