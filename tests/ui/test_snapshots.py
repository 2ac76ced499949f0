"""SVG snapshots of the projects home and the method screen, built by the app the CLI runs.

Update them with `pytest tests/ui/test_snapshots.py --snapshot-update`, then look at them.
"""

from __future__ import annotations

import sys
import time

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


# The estimate panel's numbers come from a child process; a fixed answer keeps the snapshot stable.
FIXED_ESTIMATE = """
import json
modes = [{"mode": m, "trainable": t, "total": 134_515_008, "memory": g * 1024 ** 3}
         for m, t, g in (("full", 134_515_008, 2.6), ("lora", 4_884_480, 1.4), ("qlora", 4_884_480, 0.9),
                         ("last_layer", 28_311_552, 1.1))]
print(json.dumps({"model": "SmolLM2-135M-Instruct", "device": "cpu", "precision": "fp32", "batch_size": 4,
                  "max_length": 512, "chosen": "lora", "free_bytes": 16 * 1024 ** 3, "where": "available RAM",
                  "modes": modes}))
"""


def test_method_screen(snap_compare, home, chat_file, tmp_path, monkeypatch):
    from screens.widgets.mode_estimate import ModeEstimate

    make_projects(chat_file)
    script = tmp_path / "estimate.py"
    script.write_text(FIXED_ESTIMATE)
    monkeypatch.setattr(ModeEstimate, "COMMAND", (sys.executable, str(script)))
    monkeypatch.setattr(ModeEstimate, "DELAY", 0.05)

    async def open_method(pilot) -> None:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("t")
        await settle(pilot)
        panel = pilot.app.screen.query_one(ModeEstimate)
        deadline = time.time() + 30
        while panel.report is None and time.time() < deadline:
            await pilot.pause(0.1)
        await settle(pilot)

    assert snap_compare(WorkbenchApp(), terminal_size=SIZE, run_before=open_method)
