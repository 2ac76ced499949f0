"""Importing a JSONL file from the project screen: the report, then the datasets table."""

from __future__ import annotations

from textual.widgets import DataTable, Static

from screens.app import WorkbenchApp
from screens.data.importer import ImportScreen, complete_path
from screens.project import ProjectScreen
from tests.conftest import CHAT_RECORDS, write_jsonl
from workbench import project

SIZE = (120, 36)


async def settle(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def text(widget: Static) -> str:
    return str(widget.render())


async def open_import(pilot) -> ImportScreen:
    await settle(pilot)
    await pilot.press("enter")  # open the only project
    await settle(pilot)
    assert isinstance(pilot.app.screen, ProjectScreen)
    await pilot.press("i")
    await pilot.pause()
    assert isinstance(pilot.app.screen, ImportScreen)
    return pilot.app.screen


async def test_bad_lines_are_reported_and_good_records_imported(home, tmp_path):
    project.create("alpha")
    source = write_jsonl(tmp_path / "support.jsonl", CHAT_RECORDS[:5], ["{not json", '{"foo": 1}'])
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        dialog = await open_import(pilot)
        await pilot.press(*str(source), "enter")
        await settle(pilot)
        report = text(dialog.query_one("#report", Static))
        assert "Imported 5 record(s) into dataset 'support' (5 chat)." in report
        assert "line 6:" in report and "line 7:" in report
        assert (home / "alpha" / "datasets" / "support.jsonl").exists()

        await pilot.press("escape")
        await settle(pilot)
        table = pilot.app.screen.query_one("#datasets", DataTable)
        assert [str(c) for c in table.get_row_at(0)][:4] == ["support", "chat", "5", "train"]
        assert not pilot.app.screen.query_one("#no-datasets").display


async def test_name_and_split_can_be_chosen(home, chat_file):
    project.create("alpha")
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        dialog = await open_import(pilot)
        dialog.query_one("#path").value = str(chat_file)
        dialog.query_one("#dataset").value = "held-out"
        dialog.query_one("#split").value = "eval"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "into dataset 'held-out'" in text(dialog.query_one("#report", Static))
    entry = project.load("alpha").dataset("held-out")
    assert (entry.split, entry.records) == ("eval", 40)


async def test_missing_file_is_an_inline_error(home, tmp_path):
    project.create("alpha")
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        dialog = await open_import(pilot)
        dialog.query_one("#path").value = str(tmp_path / "nope.jsonl")
        await pilot.press("enter")
        await settle(pilot)
        status = dialog.query_one("#status", Static)
        assert "No such file" in text(status) and status.has_class("error")
        assert isinstance(pilot.app.screen, ImportScreen)
    assert project.load("alpha").datasets == []


async def test_a_file_with_no_usable_record_imports_nothing(home, tmp_path):
    project.create("alpha")
    source = write_jsonl(tmp_path / "junk.jsonl", [], ["nope", "[1, 2]"])
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        dialog = await open_import(pilot)
        dialog.query_one("#path").value = str(source)
        await pilot.press("enter")
        await settle(pilot)
        report = text(dialog.query_one("#report", Static))
        assert "Nothing imported" in report and "line 1:" in report and "line 2:" in report
    assert project.load("alpha").datasets == []


def test_path_completion(tmp_path):
    (tmp_path / "chat.jsonl").write_text("")
    (tmp_path / "data").mkdir()
    assert complete_path(f"{tmp_path}/ch") == f"{tmp_path}/chat.jsonl"
    assert complete_path(f"{tmp_path}/da") == f"{tmp_path}/data/"
    assert complete_path(f"{tmp_path}/zz") is None


async def test_progress_reaches_the_end_and_duplicates_can_be_removed(home, tmp_path):
    project.create("alpha")
    source = write_jsonl(tmp_path / "dups.jsonl", CHAT_RECORDS[:3] + CHAT_RECORDS[:2], ["{broken"])
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        dialog = await open_import(pilot)
        dialog.query_one("#path").value = str(source)
        dialog.query_one("#kind").value = "chat"
        dialog.query_one("#dedupe").value = True
        await pilot.press("ctrl+s")
        await settle(pilot)
        bar = dialog.query_one("#progress")
        assert bar.display and bar.percentage == 1
        report = text(dialog.query_one("#report", Static))
        assert "Imported 3 record(s)" in report and "2 duplicate record(s) removed: line 4 repeats line 1" in report
        assert "line 6: not valid JSON" in report
    assert project.load("alpha").dataset("dups").records == 3


async def test_replacing_a_dataset_is_asked_first(home, tmp_path):
    from workbench.data.importer import import_file

    project.create("alpha")
    import_file("alpha", write_jsonl(tmp_path / "support.jsonl", CHAT_RECORDS[:6]))
    (tmp_path / "again").mkdir()
    source = write_jsonl(tmp_path / "again" / "support.jsonl", CHAT_RECORDS[:2])
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        dialog = await open_import(pilot)
        dialog.query_one("#path").value = str(source)
        await pilot.press("ctrl+s")
        await settle(pilot)
        status = text(dialog.query_one("#status", Static))
        assert "Dataset 'support' already holds 6 record(s). Press enter again to replace it" in status
        assert project.load("alpha").dataset("support").records == 6  # nothing started yet

        dialog.query_one("#dataset").value = "other"  # a change of name asks no more about 'support'
        dialog.query_one("#dataset").value = ""
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert project.load("alpha").dataset("support").records == 6  # asked again

        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "Imported 2 record(s) into dataset 'support'" in text(dialog.query_one("#report", Static))
    assert project.load("alpha").dataset("support").records == 2
