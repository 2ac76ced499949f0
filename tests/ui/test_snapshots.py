"""SVG snapshots of the projects home and the method screen, built by the app the CLI runs.

Update them with `pytest tests/ui/test_snapshots.py --snapshot-update`, then look at them.
"""

from __future__ import annotations

from textual.widgets import Static

from screens.app import WorkbenchApp
from workbench import project
from workbench.data.importer import import_file

SIZE = (120, 36)


async def settle(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def make_projects(chat_file) -> None:
    project.create("demo-citations", description="Demo: turn a raw book citation into a JSON record.")
    import_file("demo-citations", chat_file)
    project.create("support-bot")


async def hide_home_path(pilot) -> None:
    """The projects home is a fresh temporary folder in every test run."""
    await settle(pilot)
    pilot.app.screen.query_one("#home", Static).update("Projects live in $WORKBENCH_HOME")
    await pilot.pause()


def test_projects_home(snap_compare, home, chat_file):
    make_projects(chat_file)
    assert snap_compare(WorkbenchApp(), terminal_size=SIZE, run_before=hide_home_path)


def test_method_screen(snap_compare, home, chat_file):
    make_projects(chat_file)

    async def open_method(pilot) -> None:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("t")
        await settle(pilot)

    assert snap_compare(WorkbenchApp(), terminal_size=SIZE, run_before=open_method)
