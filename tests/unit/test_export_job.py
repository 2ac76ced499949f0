"""The export job's light side: what `start` refuses before anything runs, and reading its events."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.unit.test_store import StandIn, make_run
from workbench import locations
from workbench import project as projects
from workbench.export import ExportError
from workbench.jobs.store import RunError
from workbench.export import job as export_job
from workbench.jobs import store
from workbench.jobs.errors import humanize
from workbench.run import events as ev
from workbench.run import layout
from workbench.run.spec import JobSpec


@pytest.fixture
def proj(home):
    projects.create("p")
    return "p"


@pytest.fixture
def finished_run(proj):
    run_dir = make_run(proj, "r1", [ev.Started(), ev.Finished(step=3)])
    (run_dir / layout.ADAPTER).mkdir()
    (run_dir / layout.ADAPTER / "adapter_config.json").write_text("{}")
    return "r1"


def write_job(folder, events):
    folder.mkdir(parents=True)
    writer = ev.EventWriter(folder / layout.EVENTS)
    for event in events:
        writer.emit(event)
    writer.close()
    return folder


def test_start_refuses_what_cannot_be_exported_before_starting_anything(proj, finished_run, tmp_path):
    with pytest.raises(ExportError, match="Unknown format 'onnx'"):
        export_job.start(proj, finished_run, "onnx")
    with pytest.raises(ExportError, match="gguf only"):
        export_job.start(proj, "", "lora")
    full = tmp_path / "full"
    (full / "x").mkdir(parents=True)
    with pytest.raises(ExportError, match="exists and is not empty"):
        export_job.start(proj, finished_run, "lora", full)
    make_run(proj, "r2", [ev.Started()])
    with pytest.raises(RunError, match="no trained weights"):
        export_job.start(proj, "r2", "lora")
    assert not locations.export_jobs_dir(proj, finished_run).exists()
    assert not locations.export_jobs_dir(proj, "r2").exists()


def test_follow_reads_from_the_first_event_to_the_last(tmp_path):
    done = write_job(tmp_path / "done", [ev.Started(), ev.Status(message="Merging"),
                                         ev.Artifact(path="/o/m-f16.gguf", size=2048),
                                         ev.Finished(output="/o"), ev.Status(message="after the end")])
    events = list(export_job.follow(done))
    assert [e.type for e in events] == ["started", "status", "artifact", "finished"]
    assert [export_job.describe(e) for e in events] == [None, "Merging", "wrote m-f16.gguf (2.0 KiB)", None]
    assert export_job.wait(done, status=lambda line: None) == Path("/o")


def test_an_export_that_died_without_a_final_event_reads_as_lost(tmp_path):
    killed = write_job(tmp_path / "killed", [ev.Started(), ev.Status(message="Converting")])
    events = list(export_job.follow(killed))
    assert events[-1].type == "error" and "without a final event" in events[-1].message
    with pytest.raises(ExportError, match="without a final event"):
        export_job.wait(killed, status=lambda line: None)


def test_wait_prints_progress_and_returns_the_output_or_raises_the_error(tmp_path):
    lines = []
    done = write_job(tmp_path / "done", [ev.Started(), ev.Status(message="Copying the adapter"),
                                         ev.Finished(output=str(tmp_path / "lora"))])
    assert export_job.wait(done, lines.append) == tmp_path / "lora"
    assert lines == ["Copying the adapter"]
    failed = write_job(tmp_path / "failed", [ev.Started(), ev.Error(message="verification failed for x.gguf")])
    with pytest.raises(ExportError, match="verification failed for x.gguf"):
        export_job.wait(failed, lines.append)
    stopped = write_job(tmp_path / "stopped", [ev.Started(), ev.Finished(reason="stopped")])
    with pytest.raises(ExportError, match="stopped"):
        export_job.wait(stopped, lines.append)


def test_an_export_error_reaches_the_person_as_written():
    assert humanize(ExportError("/x exists and is not empty")) == ("export", "/x exists and is not empty")
    kind, message = humanize(RuntimeError("boom"))
    assert kind == "error" and message.startswith("RuntimeError: boom")


def test_a_job_outside_the_runs_folder_is_found_read_and_stopped(proj, finished_run):
    folder = locations.export_jobs_dir(proj, finished_run) / "20250101-000000-gguf"
    folder.mkdir(parents=True)
    JobSpec(id=folder.name, project=proj, method="export", base_model="default", train=[],
            params={"out": "/o"}).save(folder)
    stand_in = StandIn()  # holds the job's lock, as its worker would
    proc = stand_in.proc
    try:
        stand_in.hold(folder)
        (folder / layout.PID).write_text(f"{proc.pid}\n")
        assert export_job.jobs(proj, finished_run) == [folder]
        assert export_job.running(proj, finished_run) == folder and store.read(folder).state == "starting"
        assert [r.id for r in store.list_runs(proj)] == ["r1"]  # an export is not a run
        export_job.stop(folder)
        assert proc.wait(timeout=10) == -15
        time.sleep(0.05)
        assert export_job.running(proj, finished_run) is None
        with pytest.raises(store.RunError, match="not running"):
            export_job.stop(folder)
    finally:
        stand_in.end()


def test_an_earlier_export_is_replaced_only_when_asked_and_other_files_never(proj, finished_run, tmp_path):
    from workbench.export.errors import ExportExists
    from workbench.export.outdir import mark

    half = tmp_path / "half"
    mark(half, "writing", job="20261130-lora", run=finished_run, format="gguf")
    (half / "model-f16.gguf").write_bytes(b"GGUF cut short")
    assert export_job.out_state(half) == ("half", " (export 20261130-lora did not complete)")
    with pytest.raises(ExportExists, match=r"holds a half-made export \(export 20261130-lora did not complete\); "
                                           r"--force replaces it"):
        export_job.start(proj, finished_run, "lora", half)
    done = tmp_path / "done"
    mark(done, "complete", job="j", run=finished_run, format="lora")
    assert export_job.out_state(done) == ("complete", "")
    with pytest.raises(ExportExists, match="holds an earlier export; --force replaces it"):
        export_job.start(proj, finished_run, "lora", done)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    for force in (False, True):
        with pytest.raises(ExportError, match="exists and is not empty") as refused:
            export_job.start(proj, finished_run, "lora", other, force=force)
        assert not isinstance(refused.value, ExportExists)
    assert (other / "notes.txt").read_text() == "mine"
    assert not locations.export_jobs_dir(proj, finished_run).exists()  # nothing started
