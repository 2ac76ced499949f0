"""SVG snapshots of every main screen at the sizes SSH terminals have (80x24, 120x36, 200x60), each
opened from the app the CLI runs (`WorkbenchApp`) the way a person opens it, on the fixed projects of
tests/ui/world.py. Each snapshot also checks that no table hides a number.

Update them with `pytest tests/ui/test_snapshots.py --snapshot-update`, then look at them
(`rsvg-convert -o x.png tests/ui/__snapshots__/test_snapshots/NAME.svg`).
"""

from __future__ import annotations

import pytest

from screens.app import WorkbenchApp
from tests.ui.widths import hidden_numbers
from tests.ui.world import SCREENS, world  # noqa: F401 - a fixture

SIZES = {"80x24": (80, 24), "120x36": (120, 36), "200x60": (200, 60)}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", SCREENS)
def test_screen(snap_compare, world, name, size):  # noqa: F811
    async def run_before(pilot) -> None:
        await SCREENS[name](pilot, world)
        assert hidden_numbers(pilot.app.screen) == []

    assert snap_compare(WorkbenchApp(), terminal_size=SIZES[size], run_before=run_before)
