"""Pipelines and sweeps without a worker: the stage syntax, the checks made before anything
trains, the state of a pipeline or sweep run read from its files, and the GPU assignment."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.unit.test_store import dead_pid, hold_here, make_run, release_held  # noqa: F401 - a fixture
from workbench import project as projects
from workbench.cli.main import main
from workbench.data.importer import import_file
from workbench.jobs import store
from workbench.params import ParamError
from workbench.plans import pipelines, sweeps
from workbench.plans.pipelines import PipelineError, Stage, parse_stage
from workbench.run import events as ev

PAIRS = [{"prompt": f"What is {i}?", "chosen": f"It is {i}.", "rejected": "No."} for i in range(6)]


@pytest.fixture
def proj(home, chat_file, tmp_path) -> str:
    projects.create("p")
    import_file("p", chat_file)
    prefs = tmp_path / "prefs.jsonl"
    prefs.write_text("".join(json.dumps(r) + "\n" for r in PAIRS))
    import_file("p", prefs)
    return "p"


# the stage syntax ---------------------------------------------------------------------


def test_a_stage_names_method_values_datasets_and_base():
    stage = parse_stage("sft:max_steps=50, mode=lora,target_modules=q_proj,v_proj,base=run:r1/checkpoint-5@chat+more")
    assert stage == Stage(method="sft", values={"max_steps": "50", "mode": "lora", "target_modules": "q_proj,v_proj"},
                          datasets=["chat", "more"], base="run:r1/checkpoint-5")
    assert parse_stage(stage.to_text()) == stage
    assert parse_stage("dpo") == Stage(method="dpo")
    assert parse_stage("dpo@prefs") == Stage(method="dpo", datasets=["prefs"])


def test_the_default_base_is_the_project_base_then_the_previous_stage():
    stage = parse_stage("dpo:beta=0.1")
    assert (stage.base_for(0), stage.base_for(1)) == ("base", "previous")
    assert parse_stage("dpo:base=base").base_for(3) == "base"


@pytest.mark.parametrize("text, message", [
    ("", "Stage 2 ('') names no method"),
    (":max_steps=3", "names no method"),
    ("sft:max_steps", "'max_steps' is not KEY=VALUE"),
    ("sft:=3", "'=3' has no parameter name"),
    ("sft:max_steps=3,max_steps=4", "sets 'max_steps' twice"),
    ("sft@", "'@' must be followed by dataset names"),
    ("sft@a+", "'@' must be followed by dataset names"),
])
def test_stage_syntax_errors_say_what_is_wrong(text, message):
    with pytest.raises(PipelineError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_stage(text, 2)


# checks before anything trains ---------------------------------------------------------


@pytest.mark.parametrize("stages, message", [
    (["sft@chat", "ppx@prefs"], r"Stage 2 \(ppx\): Unknown method 'ppx'. Available: sft"),
    (["sft:learning_rate=7@chat"], r"Stage 1 \(sft\): learning_rate: 7.0 is above the maximum 1"),
    (["sft:lr=1e-4@chat"], r"Stage 1 \(sft\): Unknown parameter\(s\): lr"),
    (["sft@chat", "dpo:beta=x@prefs"], r"Stage 2 \(dpo\): beta: 'x' is not a valid float"),
    (["sft"], r"Stage 1 \(sft\): dataset 'prefs' holds preference records; Supervised fine-tuning needs chat "
              r"or prompt_completion or text. Name the stage's datasets: sft@NAME"),
    (["sft@chat", "dpo@chat"], r"Stage 2 \(dpo\): dataset 'chat' holds chat records; Direct preference"),
    (["sft@nope"], r"Stage 1 \(sft\): Project 'p' has no dataset 'nope' \(it has: chat, prefs\)"),
    (["sft:base=previous@chat"], r"Stage 1 \(sft\) starts from the previous stage, but it is the first one"),
    (["sft@chat", "dpo:base=run:ghost@prefs"], r"Stage 2 \(dpo\): Project 'p' has no run 'ghost'"),
    (["sft@chat", "dpo:base=/no/such/model@prefs"], r"Stage 2 \(dpo\): Model '/no/such/model' does not exist"),
    ([], "at least one stage"),
])
def test_define_checks_every_stage_up_front(proj, stages, message):
    with pytest.raises(PipelineError, match=message):
        pipelines.define(proj, "pipe", [parse_stage(s, n) for n, s in enumerate(stages, 1)])
    assert pipelines.list_pipelines(proj) == []  # nothing saved


def test_define_save_load_list(proj):
    stages = [parse_stage("sft:max_steps=3,mode=full@chat"), parse_stage("dpo:beta=0.2@prefs")]
    pipelines.define(proj, "prep", stages)
    loaded = pipelines.load(proj, "prep")
    assert loaded.stages == stages
    assert [p.name for p in pipelines.list_pipelines(proj)] == ["prep"]
    with pytest.raises(PipelineError, match="already has a pipeline 'prep'"):
        pipelines.define(proj, "prep", stages)
    pipelines.define(proj, "prep", stages[:1], replace=True)
    assert len(pipelines.load(proj, "prep").stages) == 1
    with pytest.raises(PipelineError, match=r"has no pipeline 'other' \(it has: prep\)"):
        pipelines.load(proj, "other")
    with pytest.raises(projects.ProjectError, match="no spaces"):
        pipelines.define(proj, "bad name", stages)


def test_cli_define_and_its_one_line_errors(proj, capsys):
    assert main(["pipeline", proj, "define", "prep", "--stage", "sft:max_steps=3@chat", "--stage", "dpo@prefs"]) == 0
    out = capsys.readouterr().out
    assert "Defined pipeline 'prep' with 2 stage(s)" in out and "dpo@prefs\tfrom previous" in out
    assert main(["pipeline", proj, "list"]) == 0
    assert "prep\tsft:max_steps=3@chat  ->  dpo@prefs" in capsys.readouterr().out
    assert main(["pipeline", proj, "define", "x", "--stage", "sft@chat", "--stage", "dpo:beta=-1@prefs"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("workbench: error: Stage 2 (dpo): beta:") and err.count("\n") == 1
    assert main(["pipeline", proj, "run", "ghost"]) == 1
    assert "has no pipeline 'ghost'" in capsys.readouterr().err


# the state of a run of a plan, from its files --------------------------------------------


def make_plan(proj: str, events: list[ev.Event], pid: int | None = None, kind: str = "pipeline",
              stages: list[Stage] | None = None, grid: dict | None = None) -> pipelines.Plan:
    plan = pipelines.Plan(id=pipelines.new_plan_id(proj, "pipe-prep"), project=proj, kind=kind, name="prep",
                          stages=stages or [parse_stage("sft@chat"), parse_stage("dpo@prefs")], grid=grid or {})
    plan.path.mkdir(parents=True)
    plan.save()
    writer = ev.EventWriter(plan.path / "events.jsonl")
    for event in events:
        writer.emit(event)
    writer.close()
    if pid is not None:
        (plan.path / "pid").write_text(f"{pid}\n")
        (plan.path / "heartbeat").write_text("x")
    return plan


DONE = [ev.Started(pid=1), ev.TrainBegin(total_steps=3), ev.Log(step=3, total_steps=3, loss=2.0),
        ev.Eval(step=3, loss=2.5), ev.Finished(reason="completed", step=3)]
S, E, F = pipelines.StageStarted, pipelines.StageEnded, pipelines.RunnerFinished


def test_a_completed_pipeline(proj):
    make_run(proj, "r1", DONE, pid=dead_pid())
    make_run(proj, "r2", DONE, pid=dead_pid())
    plan = make_plan(proj, [pipelines.RunnerStarted(pid=1), S(stage=0, run_id="r1"), E(stage=0, run_id="r1", state="completed"),
                            S(stage=1, run_id="r2"), E(stage=1, run_id="r2", state="completed"),
                            F(state="completed", message="All 2 stages completed.")], pid=dead_pid())
    info = pipelines.status(proj, plan.id)
    assert (info.state, info.alive, info.resumable) == ("completed", False, False)
    assert [(s.run_id, s.state) for s in info.stages] == [("r1", "completed"), ("r2", "completed")]
    assert info.progress() == "stage 2/2 dpo completed"


def test_a_failed_stage_names_itself_and_leaves_the_rest_pending(proj):
    make_run(proj, "r1", [ev.Started(pid=1), ev.Error(message="Out of memory.", kind="out_of_memory")], pid=dead_pid())
    plan = make_plan(proj, [pipelines.RunnerStarted(pid=1), S(stage=0, run_id="r1"),
                            E(stage=0, run_id="r1", state="failed", message="Out of memory."),
                            F(state="failed", stage=0, message="Stage 1 (sft) failed: Out of memory.")], pid=dead_pid())
    info = pipelines.status(proj, plan.id)
    assert (info.state, info.message, info.resumable) == ("failed", "Stage 1 (sft) failed: Out of memory.", True)
    assert [s.state for s in info.stages] == ["failed", "pending"]
    assert info.progress() == "stage 1/2 sft failed"


def test_a_stage_that_could_not_start_keeps_its_message(proj):
    plan = make_plan(proj, [pipelines.RunnerStarted(pid=1), E(stage=0, state="failed", message="Stage 1 (sft) could not start: x"),
                            F(state="failed", stage=0, message="Stage 1 (sft) could not start: x")], pid=dead_pid())
    stage = pipelines.status(proj, plan.id).stages[0]
    assert (stage.run_id, stage.state, stage.message) == ("", "failed", "Stage 1 (sft) could not start: x")


def test_a_dead_runner_without_a_final_event_is_lost(proj):
    make_run(proj, "r1", DONE[:3], pid=dead_pid(), heartbeat_age=1)
    plan = make_plan(proj, [pipelines.RunnerStarted(pid=1), S(stage=0, run_id="r1")], pid=dead_pid())
    info = pipelines.status(proj, plan.id)
    assert (info.state, info.alive, info.resumable) == ("lost", False, True)
    assert "resume continues it" in info.message
    with pytest.raises(PipelineError, match="is not running"):
        from workbench.plans import runner as pipeline_runner
        pipeline_runner.stop(proj, plan.id)


def test_a_live_runner_is_running_and_a_resumed_one_starts_a_new_life(proj):
    hold_here(make_run(proj, "r1", DONE[:3], pid=os.getpid(), heartbeat_age=0))
    plan = make_plan(proj, [pipelines.RunnerStarted(pid=1), S(stage=0, run_id="r1"),
                            F(state="stopped", stage=0, message="stopped"), pipelines.RunnerStarted(pid=2, resumed=True),
                            S(stage=0, run_id="r1", action="resumed")], pid=os.getpid())
    hold_here(plan.path)
    info = pipelines.status(proj, plan.id)
    assert (info.state, info.alive, info.message) == ("running", True, "")
    assert info.progress() == "stage 1/2 sft running"


def test_a_runner_just_resumed_is_starting_not_stopped(proj):
    plan = make_plan(proj, [pipelines.RunnerStarted(pid=1), F(state="stopped", stage=0, time=time.time() - 5)])
    (plan.path / "pid").write_text(f"{os.getpid()}\n")  # written after the final event: a new runner
    hold_here(plan.path)
    info = pipelines.status(proj, plan.id)
    assert (info.state, info.alive) == ("starting", True)


def test_a_silent_runner_is_stalled_and_cannot_be_resumed(proj, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HEARTBEAT_STALE", "5")
    plan = make_plan(proj, [pipelines.RunnerStarted(pid=1), S(stage=0, run_id="r1")], pid=os.getpid())
    old = time.time() - 30
    for name in ("pid", "heartbeat"):
        os.utime(plan.path / name, (old, old))
    hold_here(plan.path)
    info = pipelines.status(proj, plan.id)
    assert (info.state, info.alive, info.resumable) == ("stalled", True, False)
    assert 29 <= info.stalled_for < 60 and "no heartbeat for 30 s" in info.message
    from workbench.plans import runner as pipeline_runner
    with pytest.raises(PipelineError, match=f"Pipeline run {plan.id} is already running \\(pid {os.getpid()}\\)"):
        pipeline_runner.resume(proj, plan.id, wait_for_start=False)


def test_the_runs_list_groups_a_pipeline_over_its_runs(proj):
    make_run(proj, "20990101-000001-sft", DONE, pid=dead_pid())
    make_run(proj, "20990101-000002-sft", DONE, pid=dead_pid())
    make_run(proj, "20990101-000003-dpo", DONE, pid=dead_pid())
    make_run(proj, "20990101-000009-sft", DONE, pid=dead_pid())
    plan = make_plan(proj, [pipelines.RunnerStarted(pid=1), S(stage=0, run_id="20990101-000002-sft"),
                            S(stage=1, run_id="20990101-000003-dpo")], pid=dead_pid())
    runs = store.list_runs(proj)
    plans = pipelines.list_plan_runs(proj, {r.id: r for r in runs})
    rows = [(depth, item.id) for depth, item in pipelines.group_runs(runs, plans)]
    # newest first by id (the plan's id is stamped today, before these runs of 2099)
    assert rows == [(0, "20990101-000009-sft"), (0, "20990101-000001-sft"), (0, plan.id),
                    (1, "20990101-000002-sft"), (1, "20990101-000003-dpo")]
    assert store.pipeline_of(store.get(proj, "20990101-000009-sft").path) == {}


# sweeps -------------------------------------------------------------------------------


def test_grid_parsing_and_its_cartesian_product():
    grid = sweeps.parse_grid(["learning_rate=1e-4, 5e-4", "lora_r=8,16"])
    assert grid == {"learning_rate": ["1e-4", "5e-4"], "lora_r": ["8", "16"]}
    assert sweeps.points(grid) == [{"learning_rate": "1e-4", "lora_r": "8"}, {"learning_rate": "1e-4", "lora_r": "16"},
                                   {"learning_rate": "5e-4", "lora_r": "8"}, {"learning_rate": "5e-4", "lora_r": "16"}]


@pytest.mark.parametrize("items, message", [
    ([], "at least one --grid"),
    (["learning_rate"], "is not KEY=VALUE,VALUE"),
    (["lora_r=8,,16"], "has an empty value"),
    (["lora_r=8,8"], "repeats a value"),
    (["lora_r=8", "lora_r=16"], "names 'lora_r' twice"),
])
def test_grid_errors(items, message):
    with pytest.raises(ParamError, match=message):
        sweeps.parse_grid(items)


def test_a_sweep_plan_checks_every_point(proj):
    grid = {"learning_rate": ["1e-4", "2"], "lora_r": ["8"]}
    with pytest.raises(PipelineError, match=r"^Sweep point learning_rate=2, lora_r=8: learning_rate: 2.0 is above"):
        sweeps.make_plan(proj, "sft", grid, datasets=["chat"])
    with pytest.raises(PipelineError, match="Sweep point learning_rate=1e-4: dataset 'prefs' holds preference"):
        sweeps.make_plan(proj, "sft", {"learning_rate": ["1e-4"]})
    with pytest.raises(ParamError, match="lora_r is both swept"):
        sweeps.make_plan(proj, "sft", {"lora_r": ["8"]}, {"lora_r": "4"}, datasets=["chat"])
    with pytest.raises(ParamError, match="--parallel must be 1 or more"):
        sweeps.make_plan(proj, "sft", {"lora_r": ["8"]}, datasets=["chat"], parallel=0)
    with pytest.raises(ParamError, match="makes 81 runs; a sweep runs at most 64"):
        sweeps.make_plan(proj, "sft", {k: [str(v) for v in range(1, 4)] for k in ("lora_r", "lora_alpha", "batch_size",
                                                                                  "grad_accum")}, datasets=["chat"])
    plan = sweeps.make_plan(proj, "sft", {"learning_rate": ["1e-4", "5e-4"]}, {"max_steps": "3"}, datasets=["chat"])
    assert plan.kind == "sweep" and plan.name == "sft over learning_rate" and len(plan.stages) == 2
    assert plan.stages[1].values == {"max_steps": "3", "learning_rate": "5e-4"} and plan.stages[1].base == "base"
    assert plan.point(1) == {"learning_rate": "5e-4"}


def test_cli_sweep_needs_a_method(proj, capsys):
    assert main(["sweep", proj, "--grid", "lora_r=8"]) == 1
    assert "A sweep needs --method" in capsys.readouterr().err


@pytest.mark.parametrize("env, expected", [
    ({"CUDA_VISIBLE_DEVICES": "0,1,2"}, ["0", "1", "2"]),
    ({"CUDA_VISIBLE_DEVICES": "3, 1"}, ["3", "1"]),
    ({"CUDA_VISIBLE_DEVICES": ""}, []),
    ({"CUDA_VISIBLE_DEVICES": "-1"}, []),
    ({"CUDA_VISIBLE_DEVICES": "2,-1,3"}, ["2"]),  # CUDA stops at the first invalid entry
    ({"CUDA_VISIBLE_DEVICES": "GPU-5c1e,GPU-77aa"}, ["GPU-5c1e", "GPU-77aa"]),
])
def test_visible_gpus_follow_cuda_visible_devices(env, expected):
    assert sweeps.visible_gpus(env) == expected


@pytest.mark.parametrize("parallel, visible, slots", [
    (1, ["0", "1"], [None]),  # one at a time: the run sees every GPU, as a plain run would
    (2, ["0", "1", "2"], ["0", "1"]),  # one GPU each
    (4, ["0", "1"], ["0", "1"]),  # no more at a time than GPUs
    (3, [], [None]),  # no GPU: one at a time on the CPU
])
def test_gpu_slots(parallel, visible, slots):
    assert sweeps.gpu_slots(parallel, visible) == slots


def test_slot_descriptions():
    assert sweeps.describe_slots([None], 2) == "No GPU visible: the runs go one at a time (asked for 2 at a time)."
    assert sweeps.describe_slots(["0", "1"], 4) == "2 runs at a time, one GPU each: 0, 1 (asked for 4; 2 GPUs visible)."


def test_launching_with_a_gpu_sets_cuda_visible_devices_for_the_worker_only(monkeypatch):
    from workbench.plans.runner import _visible_gpu

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with _visible_gpu("1"):
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    with _visible_gpu("0"):
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    with _visible_gpu(None):
        assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_report_figures_by_hand():
    events = [ev.Started(time=0), ev.TrainBegin(total_steps=4, time=10.0),
              ev.Log(step=1, loss=3.0, time=12.0), ev.Log(step=2, loss=2.0, time=14.0), ev.Eval(step=2, loss=2.6, time=15),
              ev.Finished(reason="stopped", step=2, time=16),
              ev.Started(time=100), ev.TrainBegin(total_steps=4, time=110.0),  # resumed: a new clock
              ev.Log(step=3, loss=1.5, time=113.0), ev.Log(step=4, loss=1.0, time=116.0),
              ev.Eval(step=4, loss=2.8, time=117)]
    assert sweeps.figures(events) == {"train_loss": 1.0, "eval_loss": 2.8, "best_eval_loss": 2.6,
                                      "seconds_per_step": 3.0}  # (116 - 110) / 2 steps
    assert sweeps.figures([ev.Started()]) == {"train_loss": None, "eval_loss": None, "best_eval_loss": None,
                                             "seconds_per_step": None}


def test_report_sorts_by_final_eval_loss_with_pending_runs_last(proj, capsys):
    def trained(final_eval: float, best: float) -> list[ev.Event]:
        return [ev.Started(time=0), ev.TrainBegin(total_steps=2, time=1.0), ev.Log(step=1, loss=3.0, time=2.0),
                ev.Eval(step=1, loss=best, time=2.5), ev.Log(step=2, loss=2.0, time=3.0),
                ev.Eval(step=2, loss=final_eval, time=3.5), ev.Finished(reason="completed", step=2, time=4)]

    make_run(proj, "a", trained(2.5, 2.4), pid=dead_pid())
    make_run(proj, "b", trained(1.5, 1.5), pid=dead_pid())
    grid = {"learning_rate": ["1e-4", "5e-4", "1e-3"]}
    stages = [Stage("sft", {"learning_rate": v}, ["chat"], "base") for v in grid["learning_rate"]]
    plan = make_plan(proj, [pipelines.RunnerStarted(pid=1), S(stage=0, run_id="a"), S(stage=1, run_id="b")],
                     pid=os.getpid(), kind="sweep", stages=stages, grid=grid)
    rep = sweeps.report(proj, plan.id)
    assert [(r.point["learning_rate"], r.state, r.eval_loss, r.best_eval_loss) for r in rep.rows] == [
        ("5e-4", "completed", 1.5, 1.5), ("1e-4", "completed", 2.5, 2.4), ("1e-3", "pending", None, None)]
    assert rep.rows[0].seconds_per_step == 1.0 and rep.rows[0].step == 2
    assert rep.info.progress() == "2/3 completed"
    table = sweeps.table(rep)
    assert table[0] == ["learning_rate", "state", "steps", "train loss", "eval loss", "best eval", "s/step", "run"]
    assert table[1] == ["5e-4", "completed", "2/2", "2.0000", "1.5000", "1.5000", "1.000", "b"]
    assert table[3] == ["1e-3", "pending", "0", "-", "-", "-", "-", "-"]

    assert main(["sweep", proj, "report", plan.id, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in data["rows"]] == ["b", "a", ""] and data["grid"] == grid
    assert main(["sweep", proj, "report", plan.id]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == table[0][:3] + ["train", "loss", "eval", "loss", "best", "eval", "s/step", "run"]
    assert lines[2].split() == table[1]
