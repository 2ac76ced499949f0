"""The projects home and the project screen, driven through the keys a person presses."""

from __future__ import annotations

import time

import pytest
from textual.widgets import DataTable, Static

from screens.app import WorkbenchApp
from screens.new_project import NewProjectScreen
from screens.project import ProjectScreen
from screens.projects import ProjectsScreen
from workbench import project
from workbench.data.importer import import_file
from workbench.jobs import launch, store
from workbench.registry.specs import make_spec

SIZE = (120, 36)


async def settle(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def wait_until(pilot, condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the UI"
        await pilot.pause(0.2)


def text(widget: Static) -> str:
    """What the widget shows, markup rendered."""
    return str(widget.render())


def rows(table: DataTable) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def test_home_lists_projects_with_their_counts(home, chat_file):
    project.create("alpha")
    import_file("alpha", chat_file)
    (home / "alpha" / "runs" / "run-1").mkdir()
    (home / "alpha" / "runs" / "run-1" / "job.toml").write_text("")
    project.create("beta")
    app = WorkbenchApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#projects", DataTable)
        assert rows(table) == [["alpha", "SmolLM2-135M-Instruct", "1", "40", "1"],
                               ["beta", "SmolLM2-135M-Instruct", "0", "0", "0"]]
        assert str(home) in text(app.screen.query_one("#home", Static))


async def test_empty_home_says_how_to_start(home):
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "Press n to create one" in text(pilot.app.screen.query_one("#hint", Static))


async def test_demo_project_gets_a_hint_and_its_description(home):
    project.create("demo-citations", description="Score with `workbench eval demo [RUN]`.")
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        await settle(pilot)
        hint = text(pilot.app.screen.query_one("#hint", Static))
        assert "New here?" in hint and "demo-citations" in hint
        assert text(pilot.app.screen.query_one("#details", Static)) == "Score with `workbench eval demo [RUN]`."


@pytest.mark.parametrize("name, reason", [("a/b", "path separator"), ("..", "'..'"), ("my project", "no spaces")])
async def test_invalid_name_is_refused_inline(home, name, reason):
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(pilot.app.screen, NewProjectScreen)
        await pilot.press(*name, "enter")
        await pilot.pause()
        assert isinstance(pilot.app.screen, NewProjectScreen)  # still open, so the name can be fixed
        assert reason in text(pilot.app.screen.query_one("#name-error", Static))
        assert list(home.iterdir()) == []


async def test_valid_name_creates_the_project_and_lists_it(home):
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n", *"support-bot", "enter")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ProjectsScreen)
        assert (home / "support-bot" / "project.toml").exists()
        table = pilot.app.screen.query_one("#projects", DataTable)
        assert rows(table)[table.cursor_row][0] == "support-bot"


async def test_existing_name_is_refused(home):
    project.create("taken")
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n", *"taken", "enter")
        await pilot.pause()
        assert "already exists" in text(pilot.app.screen.query_one("#name-error", Static))


async def test_escape_cancels_new_project(home):
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n", *"later", "escape")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ProjectsScreen)
        assert list(home.iterdir()) == []


async def test_command_palette_runs_screen_actions(home):
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p", *"new project")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(pilot.app.screen, NewProjectScreen)


async def test_open_project_shows_datasets_then_back_and_quit(home, chat_file):
    project.create("alpha")
    import_file("alpha", chat_file)
    app = WorkbenchApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ProjectScreen) and screen.project == "alpha"
        assert [r[:4] for r in rows(screen.query_one("#datasets", DataTable))] == [["chat", "chat", "40", "train"]]
        assert screen.query_one("#no-runs").display
        await pilot.press("s")  # nothing to stop: a warning, no crash
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ProjectsScreen)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


@pytest.mark.e2e
async def test_runs_table_follows_a_run_through_stop_and_resume(tiny_project):
    spec = make_spec(tiny_project, "sft", {"max_steps": "100000", "logging_steps": "1", "eval_steps": "0"})
    launch.start(spec, wait_for_start=True)
    try:
        app = WorkbenchApp()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("enter")
            await settle(pilot)
            table = app.screen.query_one("#runs", DataTable)
            assert rows(table)[0][:2] == [spec.id, "sft"]
            await wait_until(pilot, lambda: rows(table)[0][2] == "running" and rows(table)[0][4] != "–", 120)

            await pilot.press("s")
            await wait_until(pilot, lambda: rows(table)[0][2] == "stopped", 120)
            assert store.get(tiny_project, spec.id).resumable

            await pilot.press("r")
            await wait_until(pilot, lambda: store.get(tiny_project, spec.id).alive, 60)
            await wait_until(pilot, lambda: rows(table)[0][2] in ("starting", "running"), 10)
    finally:
        try:
            store.stop(tiny_project, spec.id)
        except store.RunError:
            pass
        store.wait(tiny_project, spec.id, timeout=120)


def fake_run(project_name: str, run_id: str) -> None:
    """A run folder as the launcher leaves it, with no worker behind it."""
    from workbench import locations
    from workbench.run.spec import DataSource, JobSpec

    run_dir = locations.run_dir(project_name, run_id)
    (run_dir / "checkpoints").mkdir(parents=True)
    JobSpec(id=run_id, project=project_name, method="sft", base_model="default", params={},
            train=[DataSource(dataset="chat", file="chat.jsonl", kind="chat")]).save(run_dir)


async def test_monitor_and_export_open_on_the_highlighted_run(home):
    project.create("alpha")
    fake_run("alpha", "run-1")
    fake_run("alpha", "run-2")
    app = WorkbenchApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        table = app.screen.query_one("#runs", DataTable)
        assert [r[0] for r in rows(table)] == ["run-2", "run-1"]  # newest first
        assert rows(table)[0][2] == "lost"  # a run folder with no live worker
        await pilot.press("down", "m")
        await pilot.pause()
        assert type(app.screen).__name__ == "MonitorScreen" and app.screen.run_id == "run-1"
        await pilot.press("escape", "up", "enter")
        await pilot.pause()
        assert type(app.screen).__name__ == "MonitorScreen" and app.screen.run_id == "run-2"
        await pilot.press("escape", "down")
        await pilot.pause()
        assert isinstance(app.screen, ProjectScreen)
        await pilot.press("e")
        await pilot.pause()
        assert type(app.screen).__name__ == "ExportScreen" and app.screen.run_id == "run-1"


async def test_a_failed_background_read_is_told_not_swallowed(home):
    app = WorkbenchApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await app.push_screen(ProjectScreen("ghost"))  # no such project on disk
        await settle(pilot)
        messages = [n.message for n in app._notifications]
        assert any(m.startswith("Reading the project failed: No project named 'ghost'") for m in messages), messages


async def test_a_stalled_run_reads_stalled_with_its_silence_stops_and_is_not_resumed(home, monkeypatch):
    from tests.unit.test_store import TRAINED, StandIn, make_run

    monkeypatch.setenv("WORKBENCH_HEARTBEAT_STALE", "5")
    project.create("alpha")
    worker = StandIn()  # holds the run, silent for 75 s: paused, or busy in a long save
    try:
        worker.hold(make_run("alpha", "run-1", TRAINED, pid=worker.pid, heartbeat_age=75, checkpoint=5))
        app = WorkbenchApp()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("enter")
            await settle(pilot)
            table = app.screen.query_one("#runs", DataTable)
            assert rows(table)[0][2] in ("stalled 75 s", "stalled 76 s")
            details = text(app.screen.query_one("#run-details", Static))
            assert "stalled — no heartbeat for 7" in details and "(press s to stop it)" in details
            await pilot.press("r")
            await settle(pilot)
            assert f"Run run-1 is already running (pid {worker.pid})." in [n.message for n in app._notifications]
            await pilot.press("s")
            await settle(pilot)
            assert worker.proc.wait(timeout=10) == -15  # stop reached it
    finally:
        worker.end()
