"""Training runs end to end: the real detached worker on the tiny model, through the CLI."""

from __future__ import annotations

import math
import os
import shutil
import signal

import pytest

from tests.e2e.conftest import events, of_type, wait_for
from workbench import locations
from workbench import project as projects
from workbench.cli.main import main
from workbench.data.importer import import_file
from workbench.files import read_toml
from workbench.jobs import store
from workbench.run import events as ev
from workbench.run.layout import latest_checkpoint

pytestmark = pytest.mark.e2e

LONG_RUN = ["--set", "max_steps=150", "--set", "batch_size=2", "--set", "logging_steps=1", "--set", "eval_steps=0",
            "--set", "scheduler=linear", "--set", "warmup=0", "--set", "learning_rate=1e-3"]


def start(capsys, project: str, *args: str) -> str:
    assert main(["train", project, *args]) == 0
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_train_wait_reports_every_phase(lora_run):
    project, run_id, result = lora_run
    assert "completed: step 30, last loss" in result.stdout
    got = events(project, run_id)
    kinds = [e.type for e in got]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert kinds.index("train_begin") < kinds.index("log")

    begin = of_type(got, ev.TrainBegin)[0]
    assert (begin.total_steps, begin.train_records, begin.eval_records, begin.device) == (30, 40, 6, "cpu")
    assert 0 < begin.trainable_params < begin.total_params  # LoRA: only the adapters train

    logs = of_type(got, ev.Log)
    assert [log.step for log in logs] == list(range(1, 31))
    assert all(math.isfinite(log.loss) for log in logs)
    assert logs[-1].loss < logs[0].loss  # the constant answer is learnt
    assert [e.step for e in of_type(got, ev.Eval)] == [10, 20, 30]
    assert all(math.isfinite(e.loss) for e in of_type(got, ev.Eval))
    assert [c.step for c in of_type(got, ev.Checkpoint)] == [10, 20, 30]

    finished = of_type(got, ev.Finished)[-1]
    run_dir = locations.run_dir(project, run_id)
    assert (finished.reason, finished.step, finished.output) == ("completed", 30, str(run_dir / "adapter"))
    assert (run_dir / "adapter" / "adapter_config.json").exists()
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()
    assert read_toml(run_dir / "result.toml")["result"]["step"] == 30

    spec = read_toml(run_dir / "job.toml")  # the resolved spec: a run can be repeated from it alone
    assert spec["runtime"]["device"] == "cpu" and spec["runtime"]["precision"] == "fp32"
    assert spec["params"]["max_steps"] == 30 and spec["job"]["model_path"]
    assert any("CPU" in note for note in spec["notes"])

    info = store.get(project, run_id)
    assert (info.state, info.step, info.alive) == ("completed", 30, False)


def test_stop_saves_a_checkpoint_and_resume_continues_from_it(tiny_project, capsys):
    run_id = start(capsys, tiny_project, *LONG_RUN, "--set", "save_steps=1000")
    wait_for(lambda: store.get(tiny_project, run_id).step >= 5, what="step 5")

    assert main(["stop", tiny_project, run_id, "--wait"]) == 0
    info = store.get(tiny_project, run_id)
    assert info.state == "stopped" and not info.alive and info.resumable
    stopped_at = info.step
    assert 5 <= stopped_at < 150
    assert latest_checkpoint(info.path).name == f"checkpoint-{stopped_at}"
    first_life = events(tiny_project, run_id)
    assert of_type(first_life, ev.Finished)[-1].reason == "stopped"
    assert of_type(first_life, ev.Checkpoint)[-1].step == stopped_at

    capsys.readouterr()
    assert main(["resume", tiny_project, run_id, "--wait"]) == 0
    assert "completed: step 150" in capsys.readouterr().out
    got = events(tiny_project, run_id)
    restarts = [i for i, e in enumerate(got) if isinstance(e, ev.Started)]
    assert len(restarts) == 2
    assert got[restarts[1]].resumed_from.endswith(f"checkpoint-{stopped_at}")
    before = of_type(got[:restarts[1]], ev.Log)
    after = of_type(got[restarts[1]:], ev.Log)
    assert [log.step for log in before] == list(range(1, stopped_at + 1))
    assert [log.step for log in after] == list(range(stopped_at + 1, 151))  # no step redone, none skipped
    lrs = [log.lr for log in before + after]
    assert all(a >= b for a, b in zip(lrs, lrs[1:])), "the linear schedule restarted on resume"
    assert store.get(tiny_project, run_id).state == "completed"
    with pytest.raises(Exception, match="has completed"):
        from workbench.jobs import launch
        launch.resume(tiny_project, run_id)


def test_a_killed_worker_is_lost_and_can_be_resumed(tiny_project, capsys):
    run_id = start(capsys, tiny_project, *LONG_RUN, "--set", "save_steps=5")
    wait_for(lambda: of_type(events(tiny_project, run_id), ev.Checkpoint), what="a checkpoint")
    pid = store.get(tiny_project, run_id).pid
    os.killpg(os.getpgid(pid), signal.SIGKILL)

    info = wait_for(lambda: (i := store.get(tiny_project, run_id)).state != "running" and i, what="lost state")
    assert info.state == "lost" and not info.alive and info.resumable
    assert "killed" in info.message
    checkpoint = latest_checkpoint(info.path)

    assert main(["resume", tiny_project, run_id, "--wait"]) == 0
    got = events(tiny_project, run_id)
    resumed = of_type(got, ev.Started)[-1]
    assert resumed.resumed_from == str(checkpoint)
    restart = got.index(resumed)
    first_step = int(checkpoint.name.split("-")[1]) + 1
    assert of_type(got[restart:], ev.Log)[0].step == first_step
    assert of_type(got, ev.Finished)[-1].reason == "completed"
    assert store.get(tiny_project, run_id).state == "completed"


def test_a_missing_model_fails_with_a_human_message(home, tiny_model, chat_file, tmp_path, capsys):
    model = tmp_path / "model-copy"
    shutil.copytree(tiny_model, model)
    projects.create("gone", base_model=str(model))
    import_file("gone", chat_file)
    shutil.rmtree(model)

    assert main(["train", "gone", "--wait", "--set", "max_steps=2"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"Base model '{model}' does not exist" in err
    run = store.list_runs("gone")[0]
    error = of_type(events("gone", run.id), ev.Error)[0]
    assert error.kind == "missing_model" and str(model) in error.message
    assert run.state == "failed" and run.message == error.message
    log = (run.path / "stderr.log").read_text()
    assert "Traceback (most recent call last)" in log and "ModelError" in log


def test_bad_data_fails_with_the_dataset_and_line(tiny_project, capsys):
    data = projects.load(tiny_project).dataset_path("chat")
    with open(data, "a", encoding="utf-8") as f:
        f.write('{"messages": [{"role": "user", "content": "half a rec\n')  # line 41, edited by hand

    assert main(["train", tiny_project, "--wait", "--set", "max_steps=2"]) == 1
    run = store.list_runs(tiny_project)[0]
    error = of_type(events(tiny_project, run.id), ev.Error)[0]
    assert error.kind == "bad_data"
    assert "Dataset 'chat' line 41: not valid JSON" in error.message
    assert "Dataset 'chat' line 41" in capsys.readouterr().err
    assert "Traceback (most recent call last)" in (run.path / "stderr.log").read_text()
