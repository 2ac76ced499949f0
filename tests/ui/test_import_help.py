"""The import dialog says which files and record kinds it reads, and stays usable on a small terminal."""

from __future__ import annotations

from screens.app import WorkbenchApp
from screens.data.importer import FORMATS_HELP, ImportScreen
from tests.ui.test_import import open_import
from workbench import project
from workbench.data.kinds import KINDS


def test_the_help_names_every_record_kind_and_the_public_shapes():
    for kind in KINDS:
        assert kind.replace("prompt_completion", "prompt/completion") in FORMATS_HELP, kind
    assert "HH-RLHF" in FORMATS_HELP and "DatasetDict" in FORMATS_HELP and "ShareGPT" in FORMATS_HELP


async def test_on_80x24_typing_goes_to_the_path_and_the_options_can_be_scrolled_to(home):
    project.create("alpha")
    async with WorkbenchApp().run_test(size=(80, 24)) as pilot:
        dialog = await open_import(pilot)
        assert isinstance(dialog, ImportScreen) and dialog.focused is dialog.query_one("#path")
        await pilot.press("a", "b")
        assert dialog.query_one("#path").value == "ab"
        kind = dialog.query_one("#kind")
        kind.focus()
        await pilot.pause()
        box = dialog.query_one("#dialog").region
        assert box.y <= kind.region.y and kind.region.bottom <= box.bottom  # scrolled into the dialog
