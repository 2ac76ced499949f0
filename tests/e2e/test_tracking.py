"""report_to: a run also writes its logs for TensorBoard, inside its own folder, the same numbers as its events."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.e2e.conftest import cli, events, make_constant_project, of_type
from workbench import locations
from workbench.params import ParamError
from workbench.run import events as ev
from workbench.run import layout

pytestmark = pytest.mark.e2e


def scalars(folder: Path) -> dict[str, dict[int, float]]:
    """Every scalar of the TensorBoard event files under `folder`: {tag: {step: value}}.

    An event file is a sequence of records (length, its crc, an Event message, its crc)."""
    from tensorboardX.proto.event_pb2 import Event

    found: dict[str, dict[int, float]] = {}
    for path in folder.rglob("events.out.tfevents.*"):
        data = path.read_bytes()
        at = 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at:at + 8])
            event = Event.FromString(data[at + 12:at + 12 + length])
            at += 12 + length + 4
            for value in event.summary.value:
                found.setdefault(value.tag, {})[event.step] = value.simple_value
    return found


def test_sft_reports_to_tensorboard_in_the_run_folder(home, tiny_model, tmp_path):
    project = make_constant_project("tracked", tiny_model, tmp_path)
    result = cli("train", project, "--wait", "--set", "max_steps=4", "--set", "eval_steps=2",
                 "--set", "batch_size=2", "--set", "save_steps=100", "--set", "report_to=tensorboard")
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.splitlines()[0].strip()
    run_dir = locations.run_dir(project, run_id)

    written = scalars(run_dir / layout.TENSORBOARD)
    logs = of_type(events(project, run_id), ev.Log)
    assert [log.step for log in logs] == [1, 2, 3, 4]
    assert written["train/loss"] == pytest.approx({log.step: log.loss for log in logs}, rel=1e-5)
    assert set(written["eval/loss"]) == {2, 4}
    assert not (run_dir / layout.CHECKPOINTS / "runs").exists()  # not the trainer's default place


def test_a_sink_that_is_not_installed_is_refused_in_one_line(monkeypatch):
    import importlib.util

    from workbench.methods.kit import tracking

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "trackio" else real(name, *a))
    with pytest.raises(ParamError, match=r"^report_to=trackio needs the trackio package.*pip install trackio"):
        tracking.check("tensorboard,trackio")
    with pytest.raises(ParamError, match="unknown sink wandb"):
        tracking.check("wandb")
    tracking.check("none")


def trackio_logs(folder: Path) -> list[dict]:
    """Every metrics row of the Trackio databases under `folder`, in the order they were logged (Trackio keeps
    a run's logs as JSON in the `metrics` table of its project's SQLite file)."""
    import json
    import sqlite3

    rows = []
    for db in sorted(folder.glob("*.db")):
        with sqlite3.connect(db) as conn:
            rows += [{**json.loads(metrics), "_step": step}
                     for metrics, step in conn.execute("SELECT metrics, step FROM metrics ORDER BY id")]
    return rows


@pytest.mark.skipif(not __import__("importlib").util.find_spec("trackio"), reason="trackio is optional")
def test_sft_reports_to_trackio_in_the_run_folder(home, tiny_model, tmp_path):
    project = make_constant_project("trackio", tiny_model, tmp_path)
    result = cli("train", project, "--wait", "--set", "max_steps=3", "--set", "eval_steps=0",
                 "--set", "batch_size=2", "--set", "save_steps=100", "--set", "report_to=trackio")
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.splitlines()[0].strip()
    run_dir = locations.run_dir(project, run_id)
    logged = {row["train/global_step"]: row["train/loss"] for row in trackio_logs(run_dir / layout.TRACKIO)
              if "train/loss" in row}
    logs = of_type(events(project, run_id), ev.Log)
    assert logged == pytest.approx({log.step: log.loss for log in logs}, rel=1e-5)
    assert sorted(logged) == [1, 2, 3]


@pytest.mark.skipif(not __import__("importlib").util.find_spec("trackio"), reason="trackio is optional")
def test_a_method_with_its_own_loop_logs_each_event_to_trackio(tmp_path):
    """PPO's loop logs through `Tracker`: each log event once, under its own step, in the run folder."""
    import subprocess
    import sys
    import textwrap

    run_dir = tmp_path / "run"
    script = textwrap.dedent(f"""
        from types import SimpleNamespace
        from workbench.methods.kit.tracking import Tracker
        from workbench.run import events as ev
        tracker = Tracker(SimpleNamespace(report_to="trackio", learning_rate=0.1), "proj", {str(run_dir)!r})
        for step, loss in ((1, 2.5), (2, 2.0), (3, 1.25)):
            tracker.log(ev.Log(step=step, total_steps=3, loss=loss, lr=0.1, metrics={{"reward": step / 10}}))
        tracker.close()
    """)  # a process of its own, as a worker is: Trackio reads its folder when first imported
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = trackio_logs(run_dir / layout.TRACKIO)
    assert [(r["_step"], r["train/loss"], r["train/reward"]) for r in rows] == [
        (1, 2.5, 0.1), (2, 2.0, 0.2), (3, 1.25, 0.3)]
