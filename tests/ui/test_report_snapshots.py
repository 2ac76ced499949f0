"""SVG snapshots of the report, comparison and evaluation screens at the sizes SSH terminals have, on the
recorded evaluated project of tests/ui/evaluated.py (fixed files: nothing moves between runs), opened
over the app the CLI runs (`WorkbenchApp`, for its styles). Each also checks that no table hides a number.

Update them with `pytest tests/ui/test_report_snapshots.py --snapshot-update`, then look at them
(`rsvg-convert -o x.png tests/ui/__snapshots__/test_report_snapshots/NAME.svg`).
"""

from __future__ import annotations

import time

import pytest
from textual.widgets import DataTable

from screens.app import WorkbenchApp
from tests.ui.evaluated import citations, evaluated_run
from tests.ui.recorded import recorded_run
from tests.ui.widths import hidden_numbers
from workbench import project

SIZES = {"80x24": (80, 24), "120x36": (120, 36), "200x60": (200, 60)}
DEMO = "demo"
RUN, GRPO = "20261130-192616-sft", "20261201-101500-grpo"


@pytest.fixture
def evaluated(home, monkeypatch):
    monkeypatch.setattr(project, "now_iso", lambda: "2026-11-30T18:05:00+00:00")
    project.create(DEMO, description="Demo: turn a raw book citation into a JSON record.")
    citations(DEMO)
    evaluated_run(DEMO, RUN)
    recorded_run("grpo", DEMO, GRPO)
    return home


async def wait_until(pilot, condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def report_screen(pilot) -> None:
    from screens.report import ReportScreen

    await pilot.app.push_screen(ReportScreen(DEMO, RUN))
    screen = pilot.app.screen
    await wait_until(pilot, lambda: screen.data is not None, "the report")
    await pilot.press("]")  # the second example: a base answer that is prose, a tuned one that is JSON
    await charts_drawn(pilot)


async def charts_drawn(pilot) -> None:
    """The charts draw on their clock: wait until each has drawn what it was given at its size, then a frame."""
    from screens.widgets.metric_chart import MetricChart

    await pilot.pause(0.2)
    await wait_until(pilot, lambda: all(c.drawn and not c._dirty for c in pilot.app.screen.query(MetricChart)),
                     "the charts")
    await pilot.pause(0.1)


async def compare_screen(pilot) -> None:
    from screens.compare import CompareScreen

    await pilot.app.push_screen(CompareScreen(DEMO))
    screen = pilot.app.screen
    table = screen.query_one(DataTable)
    await wait_until(pilot, lambda: table.row_count == 4, "the rows")
    table.move_cursor(column=screen.columns.index("json_valid"))
    await pilot.press("s")
    await pilot.pause(0.2)
    # The table scrolls to keep its cursor in view, and its columns are measured again after the sort: wait
    # until its scroll, width and cursor have held still for three looks in a row (a busy machine lags: a
    # CI run once took the picture before they settled, so the wait is long and its end is checked).
    deadline, seen, still = time.monotonic() + 30, None, 0
    while time.monotonic() < deadline and still < 3:
        await pilot.wait_for_scheduled_animations()
        await pilot.pause(0.1)
        now = (table.scroll_x, table.scroll_target_x, table.virtual_size, table.size, table.cursor_coordinate)
        still, seen = (still + 1 if now == seen else 0), now
    assert still >= 3, f"the table was still moving after 30 s: {seen}"


async def evaluate_screen(pilot) -> None:
    from screens.evaluate import EvaluateScreen
    from screens.report import ReportScreen

    await pilot.app.push_screen(ReportScreen(DEMO, GRPO))
    await wait_until(pilot, lambda: pilot.app.screen.data is not None, "the report")
    await charts_drawn(pilot)  # laid out before the modal covers it
    await pilot.press("a")
    modal = pilot.app.screen
    await wait_until(pilot, lambda: isinstance(modal, EvaluateScreen) and modal.setup is not None, "the form")
    modal.query_one("#metrics").focus()  # not the number field: its cursor blinks
    await pilot.pause(0.6)


SCREENS = {"report": report_screen, "compare": compare_screen, "evaluate": evaluate_screen}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", SCREENS)
def test_screen(snap_compare, evaluated, name, size):
    async def run_before(pilot) -> None:
        await pilot.pause()
        await SCREENS[name](pilot)
        assert hidden_numbers(pilot.app.screen) == []

    assert snap_compare(WorkbenchApp(), terminal_size=SIZES[size], run_before=run_before)
