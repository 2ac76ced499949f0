"""Runs sent to Slurm, without a cluster: settings, the sbatch script submitit writes (against a golden
file), the state read from sacct/squeue and the stop through scancel, with Slurm's commands faked on PATH
(tests/slurm_fakes.py); the preflight's refusals."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.slurm_fakes import FakeSlurm
from workbench.jobs import slurm, slurm_preflight, store
from workbench.jobs.slurm_task import worker_command
from workbench.jobs.targets import TargetError, runtime_from
from workbench.registry.specs import make_spec
from workbench.run import events as ev
from workbench.run import layout
from workbench.run.spec import JobSpec

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
SETTINGS = ["partition=gpu,nodes=2,gpus_per_node=8", "time=4:00:00", "account=lab", "extra=--qos=high",
            "extra=#SBATCH --constraint=h100"]


@pytest.fixture
def fake(tmp_path, monkeypatch) -> FakeSlurm:
    monkeypatch.setenv(slurm_preflight.SHARED_MOUNTS_ENV, "/")
    return FakeSlurm(tmp_path / "fake-slurm", monkeypatch)


def slurm_spec(project: str, settings=SETTINGS, **values) -> JobSpec:
    return make_spec(project, "sft", {"max_steps": 2, **values}, runtime=runtime_from("slurm", settings))


def submitted_run(project: str) -> tuple[JobSpec, Path]:
    from workbench import locations
    from workbench.jobs import launch

    spec = slurm_spec(project)
    return spec, launch.start(spec)


def test_settings_go_to_the_runtime_slurm_table_of_job_toml(tiny_project, fake):
    spec, run_dir = submitted_run(tiny_project)
    text = (run_dir / layout.SPEC).read_text()
    assert "[runtime.slurm]" in text and 'partition = "gpu"' in text
    loaded = JobSpec.load(run_dir).runtime
    assert loaded.target == "slurm"
    assert slurm.settings_of(JobSpec.load(run_dir)) == slurm.SlurmSettings(
        partition="gpu", nodes=2, gpus_per_node=8, time="4:00:00", account="lab",
        extra=["--qos=high", "#SBATCH --constraint=h100"])


def test_the_sbatch_script_matches_the_golden_file(tiny_project, fake):
    spec, run_dir = submitted_run(tiny_project)
    assert slurm.read_record(run_dir).job_id == "4242"
    script = fake.submitted("4242").replace(str(run_dir.resolve()), "<RUN_DIR>").replace(spec.id, "<RUN_ID>")
    script = script.replace(sys.executable, "<PYTHON>")
    assert script == (GOLDEN / "slurm_sbatch.sh").read_text()


def test_the_torchrun_command_across_nodes_matches_the_golden_file():
    across = worker_command(Path("/shared/runs/r1"), True, nodes=2, gpus_per_node=8, node_rank=1, master="gpu-017",
                            port=29742, python="python")
    one_node = worker_command(Path("/shared/runs/r1"), False, nodes=1, gpus_per_node=8, python="python")
    assert " ".join(across) + "\n" + " ".join(one_node) + "\n" == (GOLDEN / "slurm_torchrun.txt").read_text()


@pytest.mark.parametrize("settings, message", [
    (["nodes=two"], "Slurm setting nodes must be a whole number, not 'two'."),
    (["time=4h"], "Time limit '4h' is not in Slurm's format (minutes, H:MM:SS, or D-HH:MM:SS)."),
    (["extra=qos=high"], "Extra Slurm line 'qos=high' is not an sbatch option such as '--qos=high'."),
    (["queue=gpu"], "Unknown runtime setting 'queue'"),
    (["time=2,grace=300"], "The time limit 2 leaves no time to train before the 300 s given to save at its end."),
])
def test_bad_settings_are_refused_in_one_line(settings, message):
    with pytest.raises(TargetError if "runtime setting" in message else slurm.SlurmError) as caught:
        runtime_from("slurm", settings)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_a_slurm_setting_needs_the_slurm_target():
    with pytest.raises(TargetError, match="is a Slurm setting: add --target slurm"):
        runtime_from("local", ["partition=gpu"])
    assert runtime_from(None, ["threads=3"]).threads == 3


def emit(run_dir: Path, *events: ev.Event) -> None:
    writer = ev.EventWriter(run_dir / layout.EVENTS)
    for event in events:
        writer.emit(event, sync=True)
    writer.close()


def test_state_comes_from_the_events_and_slurm(tiny_project, fake):
    spec, run_dir = submitted_run(tiny_project)
    read = lambda: store.get(tiny_project, spec.id)  # noqa: E731

    fake.state("4242", "PENDING")
    info = read()
    assert (info.state, info.alive, info.slurm_job) == ("queued", True, "4242")

    fake.state("4242", "RUNNING")  # no lock seen from here, no event yet: not lost
    assert (read().state, read().alive) == ("starting", True)
    emit(run_dir, ev.Started(pid=1, method="sft"), ev.Log(step=1, total_steps=2, loss=1.0))
    assert (read().state, read().step) == ("running", 1)

    emit(run_dir, ev.Finished(reason="stopped", step=1))  # the time limit: saved, then requeued
    fake.state("4242", "REQUEUED")
    assert read().state == "queued"
    fake.state("4242", "RUNNING")  # the next life begins, before its worker writes `started`
    record = slurm.read_record(run_dir)
    record.life_started = time.time() + 1
    slurm.write_record(run_dir, record)
    assert read().state == "starting"
    emit(run_dir, ev.Started(pid=2, method="sft", resumed_from="checkpoint-1"))
    time.sleep(0.01)
    emit(run_dir, ev.Finished(reason="completed", step=2))
    fake.state("4242", "COMPLETED")
    assert (read().state, read().alive) == ("completed", False)


@pytest.mark.parametrize("slurm_state, state, words", [
    ("CANCELLED by 1000", "cancelled", "was cancelled before the worker wrote its end"),
    ("TIMEOUT", "failed", "ended timeout before the worker wrote its end"),
    ("NODE_FAIL", "failed", "ended node_fail"),
])
def test_a_job_that_ended_without_the_worker_saying_so(tiny_project, fake, slurm_state, state, words):
    spec, run_dir = submitted_run(tiny_project)
    emit(run_dir, ev.Started(pid=1, method="sft"))
    fake.state("4242", slurm_state)
    info = store.get(tiny_project, spec.id)
    assert (info.state, info.alive) == (state, False) and words in info.message


def test_squeue_answers_when_accounting_is_off(tiny_project, fake):
    spec, run_dir = submitted_run(tiny_project)
    (fake.folder / "no_accounting").write_text("")
    fake.state("4242", "PENDING")
    assert store.get(tiny_project, spec.id).state == "queued"


def test_stop_cancels_a_queued_job_and_asks_a_running_one_to_save_first(tiny_project, fake):
    spec, run_dir = submitted_run(tiny_project)
    fake.state("4242", "PENDING")
    store.stop(tiny_project, spec.id)
    assert fake.calls("scancel") == ["4242"]
    fake.state("4242", "CANCELLED")
    assert store.get(tiny_project, spec.id).state == "cancelled"

    spec, run_dir = submitted_run(tiny_project)  # job 4243
    fake.state("4243", "RUNNING")
    emit(run_dir, ev.Started(pid=1, method="sft"))
    info = store.stop(tiny_project, spec.id)
    assert fake.calls("scancel")[-1] == "--signal=TERM 4243"
    assert "asked to save a checkpoint" in info.message
    store.stop(tiny_project, spec.id)  # a second stop: cancelled at once
    assert fake.calls("scancel")[-1] == "4243"


def test_a_refused_submission_leaves_the_run_failed_with_sbatch_s_words(tiny_project, fake):
    from workbench.jobs import launch

    (fake.folder / "sbatch_refuses").write_text("sbatch: error: Batch job submission failed: Invalid account\n")
    spec = slurm_spec(tiny_project)
    with pytest.raises(slurm.SlurmError, match="sbatch refused the job: sbatch: error: Batch job submission failed"):
        launch.start(spec)
    info = store.get(tiny_project, spec.id)
    assert info.state == "failed" and "Invalid account" in info.message


# preflight ------------------------------------------------------------------------------------


def test_preflight_refuses_a_missing_partition(tiny_project, fake):
    with pytest.raises(slurm.SlurmError, match=r"Slurm has no partition 'gpu' \(partitions: cpu\*, debug\)\."):
        fake.partitions("cpu*|infinite\ndebug|30:00\n")
        slurm_spec(tiny_project)


def test_preflight_refuses_a_time_above_the_partition_s_limit(tiny_project, fake):
    with pytest.raises(slurm.SlurmError, match=r"The time limit 1:00:00 is above partition debug's limit of 0:30:00"):
        slurm_spec(tiny_project, ["partition=debug", "time=1:00:00"])


def test_preflight_refuses_a_folder_outside_the_shared_mounts(tiny_project, fake, monkeypatch, tmp_path):
    monkeypatch.setenv(slurm_preflight.SHARED_MOUNTS_ENV, str(tmp_path / "elsewhere"))
    with pytest.raises(slurm.SlurmError, match=r"The run folder .* is not under the shared mounts "
                                               r"WORKBENCH_SHARED_MOUNTS=.*elsewhere: the compute nodes would not see"):
        slurm_spec(tiny_project)


def test_the_mount_table_tells_a_network_filesystem_from_a_local_one():
    table = slurm_preflight.mount_table("/dev/sda1 / ext4 rw 0 0\nnfs1:/home /home nfs4 rw 0 0\n"
                                        "lustre@o2ib:/scratch /scratch lustre rw 0 0\ntmpfs /tmp tmpfs rw 0 0\n")
    slurm_preflight.check_shared([("The run folder", Path("/home/ada/projects/p/runs"))],
                                 "nfs1:/home /home nfs4 rw 0 0\n")
    assert slurm_preflight.mount_of(Path("/scratch/ada/runs"), table) == (Path("/scratch"), "lustre")
    with pytest.raises(slurm.SlurmError, match=r"The base model /tmp/m is on tmpfs \(/tmp\), not a network filesystem"):
        slurm_preflight.check_shared([("The base model", Path("/tmp/m"))],
                                     "/dev/sda1 / ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\n")


def test_preflight_refuses_a_time_limit_below_the_estimate_from_a_like_run(tiny_project, fake):
    spec, run_dir = submitted_run(tiny_project)  # an earlier run on gpu, 2 x 8: 60 s to start, 3 s a step
    t0 = time.time()
    emit(run_dir, ev.Started(pid=1, method="sft", time=t0), ev.TrainBegin(total_steps=100, time=t0 + 60),
         ev.Log(step=1, loss=1.0, time=t0 + 63), ev.Log(step=10, loss=1.0, time=t0 + 90))
    fake.state("4242", "COMPLETED")
    with pytest.raises(slurm.SlurmError) as caught:
        slurm_spec(tiny_project, [*SETTINGS[:1], "time=1:00:00"], max_steps=2000)
    assert str(caught.value) == (f"The time limit 1:00:00 is below the estimated run time 1:41:00 (2000 steps at "
                                 f"3.00 s each, as run {spec.id} went) and the 120 s kept to save at its end: "
                                 "raise time= or lower max_steps.")
    within = slurm_spec(tiny_project, [*SETTINGS[:1], "time=2:00:00"], max_steps=2000)
    assert within.notes == [f"Estimated run time 1:41:00 (2000 steps at 3.00 s each, as run {spec.id} went), "
                            "within the time limit 2:00:00."]
    other = slurm_spec(tiny_project, ["partition=debug,nodes=1", "time=20"])
    assert "No earlier sft run on this partition and allocation to time" in other.notes[0]


def test_no_slurm_here_is_said_in_one_line(tiny_project, monkeypatch, tmp_path):
    monkeypatch.setenv(slurm_preflight.SHARED_MOUNTS_ENV, "/")
    monkeypatch.setenv("PATH", str(tmp_path))  # no sinfo, no sbatch
    with pytest.raises(slurm.SlurmError, match=r"^sinfo is not on PATH: submit from a machine of the Slurm cluster"):
        slurm_spec(tiny_project)


def test_a_follower_waits_through_the_queue_and_a_requeue_to_the_run_s_end(tiny_project, fake):
    """jobs.follow on a Slurm run: queued is not lost, and the time limit's stop is not the end."""
    import threading

    from workbench.jobs.follow import follow

    spec, run_dir = submitted_run(tiny_project)
    fake.state("4242", "PENDING")
    seen: list[ev.Event] = []
    deadline = time.time() + 60
    follower = threading.Thread(target=lambda: seen.extend(follow(run_dir, poll=0.05,
                                                                  cancelled=lambda: time.time() > deadline)))
    follower.start()
    time.sleep(0.5)
    assert follower.is_alive() and seen == []  # queued: no lock, no event, still followed

    fake.state("4242", "RUNNING")
    emit(run_dir, ev.Started(pid=1, method="sft"), ev.Log(step=1, total_steps=2, loss=1.0))
    fake.state("4242", "REQUEUED")  # the time limit: the life saves and stops, Slurm requeues the job
    emit(run_dir, ev.Finished(reason="stopped", step=1))
    time.sleep(0.5)
    assert follower.is_alive() and [e.type for e in seen] == ["started", "log", "finished"]

    fake.state("4242", "RUNNING")
    record = slurm.read_record(run_dir)
    record.life_started = time.time()
    slurm.write_record(run_dir, record)
    time.sleep(0.01)
    emit(run_dir, ev.Started(pid=2, method="sft", resumed_from="checkpoint-1"))
    fake.state("4242", "COMPLETED")
    emit(run_dir, ev.Finished(reason="completed", step=2))
    follower.join(30)
    assert not follower.is_alive()
    assert [e.type for e in seen] == ["started", "log", "finished", "started", "finished"]
    assert seen[-1].reason == "completed"
