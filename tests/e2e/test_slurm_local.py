"""A Slurm run through submitit's local executor: the same submission, the same task and the real worker on
the tiny model, on this machine. Its time limit is played by the signal Slurm sends before it (SIGUSR2,
to every process of the job): the worker saves, the job is requeued and its next life resumes from that
checkpoint to the end. Slurm's own commands (sinfo for the preflight) are faked on PATH."""

from __future__ import annotations

import os
import signal

import pytest

from tests.e2e.conftest import of_type, wait_for
from tests.slurm_fakes import FakeSlurm
from workbench import locations
from workbench.cli.main import main
from workbench.jobs import slurm, slurm_preflight, store
from workbench.run import events as ev
from workbench.run import layout, liveness

pytestmark = pytest.mark.e2e


def test_a_run_on_the_local_executor_saves_and_requeues_at_its_time_limit(tiny_project, tmp_path, monkeypatch,
                                                                          capsys):
    FakeSlurm(tmp_path / "fake-slurm", monkeypatch)
    monkeypatch.setenv(slurm_preflight.SHARED_MOUNTS_ENV, "/")
    monkeypatch.setenv(slurm.CLUSTER_ENV, "local")
    assert main(["train", tiny_project, "--target", "slurm", "--set-runtime", "time=10,threads=1",
                 "--set", "max_steps=12", "--set", "save_steps=2", "--set", "eval_steps=0",
                 "--set", "batch_size=2", "--set", "warmup=0"]) == 0
    out = capsys.readouterr().out.splitlines()
    run_id = out[0]
    run_dir = locations.run_dir(tiny_project, run_id)
    record = slurm.read_record(run_dir)
    assert out[1] == f"Submitted to Slurm as job {record.job_id}." and record.cluster == "local"

    events = lambda: ev.read_all(run_dir / layout.EVENTS)  # noqa: E731
    wait_for(lambda: of_type(events(), ev.Checkpoint), timeout=120, what="the first checkpoint")
    record = slurm.read_record(run_dir)
    assert record.task_pid and record.life_started
    os.kill(liveness.read_pid(run_dir), signal.SIGUSR2)  # the worker is told to ignore it, as on Slurm
    os.kill(record.task_pid, signal.SIGUSR2)  # submitit's handler in the task: save, requeue

    info = store.wait(tiny_project, run_id, timeout=150, poll=0.2)
    got = events()
    assert info.state == "completed", info.message
    started, finished = of_type(got, ev.Started), of_type(got, ev.Finished)
    assert [f.reason for f in finished] == ["stopped", "completed"]
    assert len(started) == 2 and started[0].resumed_from is None
    stopped_at = finished[0].step
    assert 2 <= stopped_at < 12 and started[1].resumed_from.endswith(f"checkpoint-{stopped_at}")
    assert finished[1].step == 12
    logs = of_type(got, ev.Log)
    assert min(log.step for log in logs if log.time > started[1].time) == stopped_at + 1  # resumed, not restarted
    assert slurm.read_record(run_dir).life_started > record.life_started  # a second life in the same job

    assert main(["runs", tiny_project]) == 0
    line = [row for row in capsys.readouterr().out.splitlines() if row.startswith(run_id)][0]
    fields = line.split("\t")
    assert fields[2] == "completed" and f"slurm {record.job_id}" in fields
    assert fields[-1].startswith("peak ")  # the finished run's measured peak ends its line
