"""A finished run's monitor says its measured peak memory beside the estimate it started with."""

from __future__ import annotations

import json
import os

import pytest

from tests.ui.recorded import recorded_run
from tests.ui.test_monitor import MonitorApp, text_of, wait_for
from workbench.jobs.peak_report import peak_figures
from workbench.run.spec import JobSpec

GIB = 1024 ** 3


def finished_with(run_dir, host: int, gpu: int = 0) -> None:
    """The recorded run's `finished` event as a worker writes it now: with its peaks."""
    path = run_dir / "events.jsonl"
    lines = path.read_text().splitlines()
    end = json.loads(lines[-1])
    assert end["type"] == "finished"
    lines[-1] = json.dumps({**end, "peak_memory": host, "peak_gpu_memory": gpu})
    path.write_text("\n".join(lines) + "\n")


def test_the_peak_figures_compares_on_the_same_device_only():
    estimate = {"bytes": int(1.1 * GIB), "device": "cpu", "mode": "lora"}
    assert peak_figures(int(1.2 * GIB), 0, estimate) == "1.2 GiB RAM (est. 1.1)"
    assert peak_figures(int(1.2 * GIB), 0, {}) == "1.2 GiB RAM"
    assert peak_figures(3 * GIB, int(14.3 * GIB), estimate) == "14.3 GiB GPU"  # a CPU estimate
    assert peak_figures(3 * GIB, int(14.3 * GIB), {"bytes": int(12.9 * GIB), "device": "cuda"}) == \
        "14.3 GiB GPU (est. 12.9)"
    assert peak_figures(0, 0, estimate) == ""  # a worker that did not say
    assert peak_figures(GIB, 0, {"bytes": "many", "device": "cpu"}) == "1.0 GiB RAM"


def test_the_spec_keeps_the_estimate_and_leaves_no_table_without_one(tmp_path):
    spec = JobSpec(id="r", project="p", method="sft", base_model="tiny", params={}, train=[])
    spec.save(tmp_path)
    assert "estimate" not in (tmp_path / "job.toml").read_text()
    assert JobSpec.load(tmp_path).estimate == {}
    spec.estimate = {"bytes": 123456789, "device": "cpu", "mode": "lora"}
    spec.save(tmp_path)
    assert JobSpec.load(tmp_path).estimate == spec.estimate


@pytest.mark.parametrize("estimate, expected", [
    ({"bytes": int(0.7 * GIB), "device": "cpu", "mode": "lora"}, "peak 0.8 GiB RAM (est. 0.7)"),
    ({}, "peak 0.8 GiB RAM"),
])
async def test_a_finished_run_shows_its_peak_beside_its_estimate(home, estimate, expected):
    run_dir = recorded_run("sft")
    spec = JobSpec.load(run_dir)
    spec.estimate = estimate
    spec.save(run_dir)
    finished_with(run_dir, int(0.8 * GIB))
    app = MonitorApp("demo", "sft-run")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.info is not None and screen.history.finished is not None
                       and "GiB RAM" in text_of(screen.query_one("#stats")), what="the finished run")
        stats = text_of(screen.query_one("#stats"))
        row = next(line for line in stats.splitlines() if "GiB RAM" in line)
        assert " ".join(row.split()) == expected
        panel = screen.query_one("#stats")  # as drawn at 80 columns: whole, no ellipsis
        drawn = [strip.text for strip in panel.render_lines(panel.region.reset_offset)]
        assert any(expected.removeprefix("peak ") in line for line in drawn), drawn
        assert "ETA" not in stats  # the peak takes its place once the run has ended
        if os.environ.get("WB_SHOT"):
            app.save_screenshot(f"/tmp/wb12/monitor-peak-{len(estimate)}.svg")


async def test_a_running_run_keeps_its_eta(home):
    run_dir = recorded_run("sft")
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    (run_dir / "events.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # not finished yet
    app = MonitorApp("demo", "sft-run")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.info is not None and screen.history.step == 30, what="step 30")
        stats = text_of(screen.query_one("#stats"))
        assert "ETA" in stats and "peak" not in stats


def test_the_runs_command_lists_a_finished_run_s_peak(home, capsys):
    from workbench import project as projects
    from workbench.cli.main import main

    projects.create("demo")
    recorded_run("sft", run_id="a-before")  # recorded before workers said their peak
    run_dir = recorded_run("sft", run_id="b-now")
    finished_with(run_dir, int(0.8 * GIB))
    spec = JobSpec.load(run_dir)
    spec.estimate = {"bytes": int(0.7 * GIB), "device": "cpu", "mode": "lora"}
    spec.save(run_dir)
    assert main(["runs", "demo"]) == 0
    before, now = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert before[0] == "a-before" and not before[-1].startswith("peak")
    assert now[0] == "b-now" and now[-1] == "peak 0.8 GiB RAM (est. 0.7)"
