"""The runs list, the pipeline screen and the sweep screen, on run folders written by hand."""

from __future__ import annotations

import time

import pytest
from textual.widgets import DataTable, Static

from screens.app import WorkbenchApp
from screens.monitor import MonitorScreen
from screens.plans.pipeline import PipelineScreen
from screens.plans.sweep import SweepScreen
from screens.project import ProjectScreen
from tests.unit.test_store import StandIn, dead_pid, make_run
from workbench import project as projects
from workbench.plans import pipelines
from workbench.plans.pipelines import RunnerFinished, RunnerStarted, Stage, StageEnded, StageStarted, parse_stage
from workbench.run import events as ev

SIZE = (130, 36)
DONE = [ev.Started(pid=1), ev.TrainBegin(total_steps=3), ev.Log(step=3, total_steps=3, loss=2.0),
        ev.Eval(step=3, loss=2.5), ev.Finished(reason="completed", step=3)]
RUNNING = [ev.Started(pid=1), ev.TrainBegin(total_steps=10), ev.Log(step=4, total_steps=10, loss=1.25)]


async def settle(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def wait_until(pilot, condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the UI"
        await pilot.pause(0.1)


def rows(table: DataTable) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


@pytest.fixture
def runner():
    """A live process in a session of its own, standing in for a pipeline runner (and its running stage)."""
    stand_in = StandIn()
    yield stand_in
    stand_in.end()


def write_plan(project: str, plan_id: str, events: list[ev.Event], pid: int, kind: str = "pipeline",
               stages: list[Stage] | None = None, grid: dict | None = None) -> pipelines.Plan:
    plan = pipelines.Plan(id=plan_id, project=project, kind=kind, name="prep" if kind == "pipeline" else "sft over lr",
                          stages=stages or [parse_stage("sft:max_steps=3@chat"), parse_stage("dpo@prefs")],
                          grid=grid or {})
    plan.path.mkdir(parents=True)
    plan.save()
    writer = ev.EventWriter(plan.path / "events.jsonl")
    for event in events:
        writer.emit(event)
    writer.close()
    (plan.path / "pid").write_text(f"{pid}\n")
    (plan.path / "heartbeat").write_text("x")
    return plan


@pytest.fixture
def running_pipeline(home, runner) -> str:
    """Project p: a lone run, and a pipeline whose stage 1 completed and stage 2 trains."""
    projects.create("p")
    make_run("p", "20240101-090000-sft", DONE, pid=dead_pid())
    make_run("p", "20240102-100001-sft", DONE, pid=dead_pid())
    runner.hold(make_run("p", "20240102-100030-dpo", RUNNING, pid=runner.pid, heartbeat_age=0))
    runner.hold(write_plan("p", "20240102-100000-pipe-prep", [
        RunnerStarted(pid=runner.pid), StageStarted(stage=0, run_id="20240102-100001-sft"),
        StageEnded(stage=0, run_id="20240102-100001-sft", state="completed"),
        StageStarted(stage=1, run_id="20240102-100030-dpo")], pid=runner.pid).path)
    return "p"


async def test_the_runs_list_shows_a_pipeline_once_with_its_stages_under_it(running_pipeline):
    app = WorkbenchApp()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(ProjectScreen("p"))
        await settle(pilot)
        table = app.screen.query_one("#runs", DataTable)
        assert rows(table) == [
            ["▾ prep", "pipeline", "running", "stage 2/2 dpo running", "1.2500", "–"],
            ["  └ 20240102-100001-sft", "sft", "completed", "3/3", "2.0000", "2.5000"],
            ["  └ 20240102-100030-dpo", "sft", "running", "4/10", "1.2500", "–"],
            ["20240101-090000-sft", "sft", "completed", "3/3", "2.0000", "2.5000"]]
        assert "pipeline prep (20240102-100000-pipe-prep): running" in str(app.screen.query_one("#run-details").render())

        await pilot.press("down", "enter")  # a stage run opens its monitor
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen))
        assert app.screen.run_id == "20240102-100001-sft"
        await pilot.press("escape")
        await settle(pilot)

        app.screen.query_one("#runs", DataTable).move_cursor(row=0)
        await pilot.press("enter")  # the pipeline opens its own screen
        await wait_until(pilot, lambda: isinstance(app.screen, PipelineScreen) and app.screen.info is not None)
        screen = app.screen
        assert rows(screen.query_one("#stages", DataTable)) == [
            ["1", "sft:max_steps=3@chat", "base", "20240102-100001-sft", "completed", "3/3", "2.0000", "2.5000"],
            ["2", "dpo@prefs", "previous", "20240102-100030-dpo", "running", "4/10", "1.2500", "–"]]
        assert "stage 2/2 dpo running" in str(screen.query_one("#summary", Static).render())
        assert screen.check_action("stop", ()) is True and screen.check_action("resume", ()) is None

        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen))
        assert app.screen.run_id == "20240102-100030-dpo"


async def test_stop_on_the_pipeline_screen_signals_the_runner(running_pipeline, runner):
    app = WorkbenchApp()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(PipelineScreen("p", "20240102-100000-pipe-prep"))
        await wait_until(pilot, lambda: app.screen.info is not None)
        await pilot.press("s")
        await settle(pilot)
        assert runner.proc.wait(timeout=10) == -15  # SIGTERM reached the runner's process group
        await wait_until(pilot, lambda: app.screen.info.state == "lost")  # it wrote no final event: it was a stand-in
        assert app.screen.check_action("resume", ()) is True


async def test_a_failed_pipeline_names_its_stage_and_a_pending_stage_has_no_monitor(home):
    projects.create("p")
    make_run("p", "r1", [ev.Started(pid=1), ev.Error(message="Out of memory.")], pid=dead_pid())
    write_plan("p", "20240102-100000-pipe-prep", [
        RunnerStarted(pid=1), StageStarted(stage=0, run_id="r1"),
        StageEnded(stage=0, run_id="r1", state="failed", message="Out of memory."),
        RunnerFinished(state="failed", stage=0, message="Stage 1 (sft) failed: Out of memory.")], pid=dead_pid())
    app = WorkbenchApp()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(PipelineScreen("p", "20240102-100000-pipe-prep"))
        await wait_until(pilot, lambda: app.screen.info is not None)
        screen = app.screen
        assert "failed — Stage 1 (sft) failed: Out of memory." in str(screen.query_one("#summary", Static).render())
        assert [r[4] for r in rows(screen.query_one("#stages", DataTable))] == ["failed", "pending"]
        assert screen.check_action("stop", ()) is None and screen.check_action("resume", ()) is True
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.screen is screen  # stage 2 never ran: nothing to monitor


async def test_the_sweep_screen_compares_runs_best_first(home):
    projects.create("p")
    make_run("p", "a", DONE, pid=dead_pid())
    better = [e if not isinstance(e, ev.Eval) else ev.Eval(step=3, loss=1.5) for e in DONE]
    make_run("p", "b", better, pid=dead_pid())
    grid = {"learning_rate": ["1e-4", "5e-4", "1e-3"]}
    stages = [Stage("sft", {"learning_rate": v}, ["chat"], "base") for v in grid["learning_rate"]]
    write_plan("p", "20240102-100000-sweep-sft", [RunnerStarted(pid=1), StageStarted(stage=0, run_id="a"),
                                                  StageStarted(stage=1, run_id="b")],
               pid=dead_pid(), kind="sweep", stages=stages, grid=grid)
    app = WorkbenchApp()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(ProjectScreen("p"))
        await settle(pilot)
        assert rows(app.screen.query_one("#runs", DataTable))[0] == \
            ["▾ sft over lr", "sweep", "lost", "2/3 completed", "–", "1.5000"]
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SweepScreen) and app.screen.info is not None)
        table = app.screen.query_one("#stages", DataTable)
        assert [str(c.label) for c in table.columns.values()][:3] == ["learning_rate", "state", "steps"]
        assert [r[:2] + r[4:6] + r[-1:] for r in rows(table)] == [
            ["5e-4", "completed", "1.5000", "1.5000", "b"], ["1e-4", "completed", "2.5000", "2.5000", "a"],
            ["1e-3", "pending", "-", "-", "-"]]
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen))
        assert app.screen.run_id == "b"
