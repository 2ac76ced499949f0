"""MonitorScreen: on a run folder written by hand, then end to end on the real worker."""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
from pathlib import Path

import pytest
from rich.console import Console
from textual.app import App

from screens.export.screen import ExportScreen
from screens.messages import ExportRun
from screens.monitor import MonitorScreen
from screens.run_charts import LOSS
from screens.run_metrics import RunMetrics
from screens.widgets.metric_chart import MetricChart
from tests.unit.test_store import hold_here, release_held  # noqa: F401 - a fixture
from workbench import locations
from workbench.registry.specs import make_spec
from workbench.run import events as ev
from workbench.run.spec import DataSource, JobSpec

SIZE = (110, 34)


class MonitorApp(App):
    def __init__(self, project: str, run_id: str) -> None:
        super().__init__()
        self.project, self.run_id = project, run_id

    def on_mount(self) -> None:
        self.push_screen(MonitorScreen(self.project, self.run_id))

    def on_export_run(self, message: ExportRun) -> None:
        self.push_screen(ExportScreen(message.project, message.run_id))


def text_of(widget) -> str:
    console = Console(width=200, file=io.StringIO(), record=True)
    console.print(widget.content)
    return console.export_text()


def log_text(screen) -> str:
    """The event log as one line of words (the log wraps long lines)."""
    return " ".join(" ".join(line.text for line in screen.query_one("#log").lines).split())


def fake_run(project: str = "demo", run_id: str = "run-1", alive: bool = False) -> Path:
    """A run folder with job.toml and no events yet; `alive` points pid/heartbeat at us."""
    run_dir = locations.run_dir(project, run_id)
    (run_dir / "checkpoints").mkdir(parents=True)
    JobSpec(id=run_id, project=project, method="sft", base_model="tiny", params={"max_steps": 100},
            train=[DataSource(dataset="chat", file="chat.jsonl", kind="chat")]).save(run_dir)
    if alive:
        (run_dir / "pid").write_text(f"{os.getpid()}\n")
        (run_dir / "heartbeat").write_text(f"{time.time()}\n")
        hold_here(run_dir)
    return run_dir


def write_events(run_dir: Path, events: list[ev.Event]) -> None:
    writer = ev.EventWriter(run_dir / "events.jsonl")
    for event in events:
        writer.emit(event)
    writer.close()


def training_events(steps: int, t0: float, first_step: int = 1, resumed_from: str | None = None) -> list:
    events: list[ev.Event] = [
        ev.Started(pid=1234, method="sft", resumed_from=resumed_from, time=t0),
        ev.Status(message="Loading the model", time=t0 + 1),
        ev.TrainBegin(total_steps=100, trainable_params=1000, total_params=100000, train_records=40,
                      device="cpu", time=t0 + 2),
    ]
    for step in range(first_step, first_step + steps):
        events.append(ev.Log(step=step, total_steps=100, epoch=step / 10, loss=3.0 - step * 0.02,
                             lr=2e-4, tokens_per_s=1500.0, time=t0 + 2 + step))
    return events


async def wait_for(pilot, condition, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.1)


async def test_whole_history_is_loaded_and_shown(home):
    run_dir = fake_run(alive=True)
    t0 = time.time() - 100
    write_events(run_dir, training_events(40, t0) + [
        ev.Eval(step=20, loss=2.7, time=t0 + 22),
        ev.Checkpoint(step=20, path=str(run_dir / "checkpoints/checkpoint-20"), time=t0 + 22),
    ])
    with open(run_dir / "events.jsonl", "a") as f:
        f.write('{"type": "log", "step": 41, "lo')  # the worker died in the middle of a line
    app = MonitorApp("demo", "run-1")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.history.step == 40 and screen.info is not None, what="step 40")
        assert sorted(screen.history.train) == list(range(1, 41))  # from the very first step
        assert screen.history.eval == {20: 2.7}
        stats = text_of(screen.query_one("#stats"))
        assert "40/100" in stats and "2.2000" in stats and "eval 2.7000" in stats
        assert "running" in stats and "1,500" in stats
        assert "checkpoint saved at step 20" in log_text(screen)
        assert not screen.query_one("#error").display


async def test_new_lines_are_tailed_and_a_half_written_line_waits(home):
    run_dir = fake_run(alive=True)
    t0 = time.time() - 60
    write_events(run_dir, training_events(5, t0))
    app = MonitorApp("demo", "run-1")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.history.step == 5, what="step 5")
        line = json.dumps(ev.Log(step=6, total_steps=100, loss=1.25, time=t0 + 9).to_dict())
        with open(run_dir / "events.jsonl", "a") as f:
            f.write(line[:25])  # the worker is in the middle of writing
        await pilot.pause(1.0)
        assert screen.history.step == 5
        with open(run_dir / "events.jsonl", "a") as f:
            f.write(line[25:] + "\n")
        await wait_for(pilot, lambda: screen.history.step == 6, what="the completed line")
        assert screen.history.train[6] == 1.25
        await wait_for(pilot, lambda: "1.2500" in text_of(screen.query_one("#stats")), what="loss shown")


async def test_an_error_is_shown_prominently(home):
    run_dir = fake_run()
    t0 = time.time() - 30
    message = "The GPU ran out of memory at step 3: lower batch_size or max_length."
    write_events(run_dir, training_events(3, t0) + [ev.Error(message=message, kind="out_of_memory", time=t0 + 6)])
    app = MonitorApp("demo", "run-1")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        banner = screen.query_one("#error")
        await wait_for(pilot, lambda: banner.display and screen.info is not None, what="the error banner")
        assert message in text_of(banner)
        assert banner.region.height >= 1 and banner.region.y <= 2  # at the top, on screen
        assert "failed" in text_of(screen.query_one("#stats"))
        assert message in log_text(screen)


async def test_preflight_warnings_stand_out_and_the_latest_stays_in_the_figures(home):
    run_dir = fake_run(alive=True)
    t0 = time.time() - 30
    first = "12 of 40 records are longer than max_length (128 tokens) and will be cut."
    latest = "The longest batch (8 x 128 tokens) may not fit in memory: roughly 3.1 GiB needed."
    events = training_events(0, t0)
    events[2:2] = [ev.Status(message=f"Warning: {first}", time=t0 + 1.2),
                   ev.Status(message=f"Warning: {latest}", time=t0 + 1.4),
                   ev.Status(message="checking memory on the longest batch (1024 tokens)", time=t0 + 1.6)]
    write_events(run_dir, events + training_events(3, t0, first_step=1)[3:])
    app = MonitorApp("demo", "run-1")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.history.step == 3 and screen.info is not None, what="step 3")
        styles = {}
        for line in screen.query_one("#log").lines:
            for segment in line:
                styles.setdefault(segment.text.strip(), str(segment.style))
        warned = [text for text, style in styles.items() if text.startswith("Warning:")]
        assert warned and all("yellow" in styles[text] for text in warned)
        probe = next(text for text in styles if text.startswith("checking memory"))
        assert "yellow" not in styles[probe] and "red" not in styles[probe]  # an ordinary status line
        assert "checking memory on the longest batch (1024 tokens)" in log_text(screen)
        stats = " ".join(text_of(screen.query_one("#stats")).split())
        assert f"⚠ {latest}" in stats and first not in stats


async def test_resumed_run_keeps_the_latest_value_per_step_and_clears_the_old_error(home):
    run_dir = fake_run()
    t0 = time.time() - 200
    first = training_events(10, t0) + [ev.Error(message="killed by the OOM killer", time=t0 + 13)]
    again = training_events(6, t0 + 50, first_step=5, resumed_from=str(run_dir / "checkpoints/checkpoint-4"))
    again[-1].loss = 0.5  # step 10 trained again, to another loss
    write_events(run_dir, first + again + [ev.Finished(reason="stopped", step=10, time=t0 + 70)])
    app = MonitorApp("demo", "run-1")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.info is not None and screen.history.finished, what="the history")
        assert screen.history.train[10] == 0.5
        assert sorted(screen.history.train) == list(range(1, 11))
        assert not screen.query_one("#error").display  # that error belonged to the first life
        assert "resumed from checkpoint-4" in log_text(screen)
        assert screen.info.state == "stopped"


async def test_keys_follow_the_state_and_export_opens_the_export_screen(home):
    run_dir = fake_run()
    t0 = time.time() - 30
    write_events(run_dir, training_events(5, t0) + [ev.Finished(reason="completed", step=5, time=t0 + 8)])
    app = MonitorApp("demo", "run-1")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.info is not None, what="the state")
        assert "done" in text_of(screen.query_one("#stats"))
        assert screen.check_action("stop", ()) is False  # not in the footer: nothing to stop
        assert screen.check_action("resume", ()) is False  # completed runs are not resumed
        await pilot.press("s")
        assert not screen.stopping
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportScreen), what="the export screen")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, what="back to the monitor")


async def test_a_stalled_worker_reads_stalled_with_its_silence_and_can_be_stopped_not_resumed(home, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HEARTBEAT_STALE", "5")
    run_dir = fake_run(alive=True)
    (run_dir / "checkpoints" / "checkpoint-5").mkdir()
    (run_dir / "checkpoints" / "checkpoint-5" / "trainer_state.json").write_text("{}")
    t0 = time.time() - 120
    write_events(run_dir, training_events(5, t0))
    for name in ("pid", "heartbeat"):
        os.utime(run_dir / name, (t0 + 30, t0 + 30))  # silent for 90 s
    app = MonitorApp("demo", "run-1")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.info is not None, what="the state")
        stats = text_of(screen.query_one("#stats"))
        assert "stalled" in stats and "no heartbeat for 90 s" in stats
        assert screen.check_action("stop", ()) is True  # stop reaches a stalled worker
        assert screen.check_action("resume", ()) is False  # a second worker never starts beside it


async def test_chart_redraws_are_throttled(home):
    run_dir = fake_run(alive=True)
    app = MonitorApp("demo", "run-1")
    async with app.run_test(size=SIZE) as pilot:
        chart = app.screen.query_one(MetricChart)
        await pilot.pause(0.3)
        before, started = chart.drawn, time.monotonic()
        metrics = RunMetrics()
        for step in range(1, 201):  # a flood of updates within about a second
            metrics.add([ev.Log(step=step, loss=1.0 / step)])
            chart.show(metrics, LOSS)
            await asyncio.sleep(0.005)
        elapsed = time.monotonic() - started
        assert chart.drawn - before <= elapsed * 4 + 2
        await pilot.pause(0.4)
        assert chart.drawn > before  # the latest data was drawn


@pytest.mark.e2e
async def test_stop_and_resume_a_real_run_from_the_keyboard(tiny_project):
    from workbench.jobs import launch, store
    from workbench.run.layout import latest_checkpoint

    spec = make_spec("tiny", "sft", {"max_steps": "200", "save_steps": "1000"})
    run_dir = launch.start(spec, wait_for_start=True)
    try:
        app = MonitorApp("tiny", spec.id)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            await wait_for(pilot, lambda: screen.history.step >= 2 and screen.info.alive, 60, "training steps")
            await pilot.press("s")
            assert "stopping…" in text_of(screen.query_one("#stats"))
            await wait_for(pilot, lambda: screen.info.state == "stopped" and screen.state == "stopped", 60,
                           "the stop")
            checkpoint = latest_checkpoint(run_dir)
            assert checkpoint is not None
            assert "stopped" in text_of(screen.query_one("#stats"))
            assert f"checkpoint saved at step {screen.history.step}" in log_text(screen)
            stopped_at = screen.history.step

            await pilot.press("r")
            await wait_for(pilot, lambda: screen.info.state == "running" and screen.history.step > stopped_at,
                           60, "training again")
            assert f"resumed from {checkpoint.name}" in log_text(screen)
            assert sorted(screen.history.train)[0] == 1  # the first life's history is still there
            await pilot.press("s")
            await wait_for(pilot, lambda: screen.info.state == "stopped", 60, "the second stop")
    finally:
        if store.get("tiny", spec.id).alive:
            store.stop("tiny", spec.id)
        store.wait("tiny", spec.id, timeout=60)
