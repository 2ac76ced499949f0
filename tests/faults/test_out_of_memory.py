"""Out of memory in a real SFT run on the tiny model: a real torch.OutOfMemoryError raised in the forward
pass of a chosen step (WORKBENCH_FAULT=oom_at_step:N, while the batch has more than one row). Without the
retry the run ends with a message naming the step, the batch's shape, the peak and the change to make;
with it the worker retries once with half the micro-batch and twice the accumulation, says so, records
the new values in job.toml and completes."""

from __future__ import annotations

import pytest

from tests.faults.conftest import cli, events, of_type
from workbench import locations
from workbench.files import read_toml
from workbench.jobs.oom import Change
from workbench.run import events as ev

pytestmark = pytest.mark.faults

TRAIN = ["--set", "max_steps=6", "--set", "save_steps=2", "--set", "eval_steps=0", "--set", "logging_steps=1",
         "--set", "max_length=64", "--set", "warmup=0"]


def train(project: str, *args: str):
    done = cli("train", project, "--wait", *TRAIN, *args)
    run_id = done.stdout.splitlines()[0].strip()
    return done, run_id, events(project, run_id), read_toml(locations.run_dir(project, run_id) / "job.toml")


def test_without_retry_the_error_names_step_batch_peak_and_change(tiny_project, monkeypatch):
    monkeypatch.setenv("WORKBENCH_FAULT", "oom_at_step:3")
    done, _, got, spec = train(tiny_project, "--set", "batch_size=2", "--set-runtime", "oom_retry=false")
    assert done.returncode != 0
    error = of_type(got, ev.Error)[-1]
    assert error.kind == "out_of_memory"
    assert "at step 3 on a batch of 2 x " in error.message, error.message
    assert "(peak " in error.message and " GiB of RAM, 2.00 GiB more asked for)" in error.message
    assert "batch_size 2 -> 1 and grad_accum 1 -> 2 (the same effective batch of 2)" in error.message
    assert "--set batch_size=1 --set grad_accum=2" in error.message
    assert "oom_retry=true" in error.message  # the retry is offered, since it was off
    assert [log.step for log in of_type(got, ev.Log)] == [1, 2]
    assert spec["params"]["batch_size"] == 2 and spec["runtime"]["oom_retry"] is False
    assert not any("retrying" in n for n in spec["notes"])


def test_retry_halves_the_batch_says_so_and_completes(tiny_project, monkeypatch):
    monkeypatch.setenv("WORKBENCH_FAULT", "oom_at_step:5")
    done, run_id, got, spec = train(tiny_project, "--set", "batch_size=2")
    assert done.returncode == 0, done.stderr + done.stdout
    assert not of_type(got, ev.Error)
    said = [s.message for s in of_type(got, ev.Status) if "retrying once" in s.message]
    assert len(said) == 1, [s.message for s in of_type(got, ev.Status)]
    assert said[0].startswith("Warning: Out of memory at step 5 on a batch of 2 x ")
    assert ("retrying once from the checkpoint of step 4 with batch_size 2 -> 1 and grad_accum 1 -> 2 "
            "(the same effective batch of 2)") in said[0]
    assert spec["params"]["batch_size"] == 1 and spec["params"]["grad_accum"] == 2
    assert said[0].removeprefix("Warning: ") in spec["notes"]
    finished = of_type(got, ev.Finished)[-1]
    assert (finished.reason, finished.step) == ("completed", 6)
    # the retry resumed from the checkpoint of step 4: steps 5 and 6 trained once, after it
    logs = [log.step for log in of_type(got, ev.Log)]
    assert logs == [1, 2, 3, 4, 5, 6], logs
    assert (locations.run_dir(tiny_project, run_id) / "adapter" / "adapter_config.json").exists()


def test_a_retry_that_fails_again_says_what_it_tried_and_what_is_next(tiny_project, monkeypatch):
    monkeypatch.setenv("WORKBENCH_FAULT", "oom_at_step:3")
    done, _, got, spec = train(tiny_project, "--set", "batch_size=4")
    assert done.returncode != 0
    message = of_type(got, ev.Error)[-1].message
    assert "at step 3 on a batch of 2 x " in message, message
    assert "already been retried with batch_size 4 -> 2 and grad_accum 1 -> 2" in message
    assert "Try batch_size 2 -> 1 and grad_accum 2 -> 4 (the same effective batch of 4)" in message
    assert spec["params"]["batch_size"] == 2 and spec["params"]["grad_accum"] == 2
    assert len([s for s in of_type(got, ev.Status) if "retrying once" in s.message]) == 1  # once, not twice


def test_at_batch_one_the_retry_turns_on_gradient_checkpointing(tiny_project, monkeypatch):
    monkeypatch.setenv("WORKBENCH_FAULT", "oom_at_step:3:once")
    done, _, got, spec = train(tiny_project, "--set", "batch_size=1", "--set", "grad_accum=2")
    assert done.returncode == 0, done.stderr + done.stdout
    said = [s.message for s in of_type(got, ev.Status) if "retrying once" in s.message]
    assert len(said) == 1 and said[0].startswith("Warning: Out of memory at step 3 on a batch of 1 x "), said
    assert "from the checkpoint of step 2 with gradient_checkpointing on" in said[0]
    assert spec["params"]["gradient_checkpointing"] is True
    assert (spec["params"]["batch_size"], spec["params"]["grad_accum"]) == (1, 2)
    assert of_type(got, ev.Finished)[-1].step == 6


def test_change_is_a_plain_record():
    assert Change({"batch_size": 1, "gradient_checkpointing": True}, "x", True).assignments() == \
        "--set batch_size=1 --set gradient_checkpointing=true"
