"""ExportScreen: the format picks the default folder; a real LoRA export from a finished run, started as
a job; a screen opened while an export runs reattaches to it."""

from __future__ import annotations

import io
import time

import pytest
from rich.console import Console
from textual.app import App
from textual.widgets import Input, RadioButton

from screens.export.screen import ExportScreen
from workbench import locations
from workbench.export import job as export_job
from workbench.export.gguf import human_size
from workbench.registry.specs import make_spec


class ExportApp(App):
    def __init__(self, project: str, run_id: str) -> None:
        super().__init__()
        self.project, self.run_id = project, run_id

    def on_mount(self) -> None:
        self.push_screen(ExportScreen(self.project, self.run_id))


def text_of(widget) -> str:
    console = Console(width=300, file=io.StringIO(), record=True)
    console.print(widget.content)
    return console.export_text()


async def wait_for(pilot, condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.1)


def test_sizes_read_as_a_person_reads_them():
    assert human_size(512) == "512 B" and human_size(3 * 1024 * 1024) == "3.0 MiB"


async def test_the_default_folder_follows_the_format_until_edited(home):
    app = ExportApp("demo", "run-1")
    async with app.run_test(size=(100, 30)) as pilot:
        out = app.screen.query_one("#out", Input)
        assert out.value == str(locations.exports_dir("demo", "run-1") / "lora")
        await pilot.click("#merged")
        assert out.value == str(locations.exports_dir("demo", "run-1") / "merged")
        out.value = "/somewhere/else"
        await pilot.click("#lora")
        assert app.screen.query_one("#lora", RadioButton).value
        assert out.value == "/somewhere/else"


@pytest.mark.e2e
async def test_export_a_lora_adapter_then_refuse_a_non_empty_folder(tiny_project, tmp_path):
    from workbench.jobs import launch, store

    spec = make_spec("tiny", "sft", {"max_steps": "3"})
    launch.start(spec, wait_for_start=True)
    assert store.wait("tiny", spec.id, timeout=120).state == "completed"
    target = tmp_path / "my adapter"
    app = ExportApp("tiny", spec.id)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        screen.query_one("#out", Input).value = str(target)
        await pilot.press("ctrl+s")
        assert screen.running
        await wait_for(pilot, lambda: not screen.running, 90, "the export")
        assert screen.result == target
        assert (target / "adapter_config.json").exists()
        result = text_of(screen.query_one("#result"))
        assert str(target) in result and ("KiB" in result or "MiB" in result)
        progress = " ".join(line.text for line in screen.query_one("#progress").lines)
        assert "Copying the adapter" in progress

        await pilot.click("#start")  # the same folder again: the person is asked, nothing starts
        await pilot.pause()
        assert not screen.running and screen.replace_asked == str(target)
        assert any("holds an earlier export" in str(n.message) for n in app._notifications)
        (target / "old-file").write_text("from the first export")
        await pilot.press("ctrl+s")  # again (the warning's toast may cover the button): the export is replaced
        await wait_for(pilot, lambda: not (target / "old-file").exists() and not screen.running
                       and (target / "adapter_config.json").exists(), 90,
                       "the replacing export: " + text_of(screen.query_one("#result")))
        assert "Written to" in text_of(screen.query_one("#result"))

        # an export started elsewhere (the CLI, or this screen before the app quit): the screen reattaches
        merged = tmp_path / "merged"
        folder = export_job.start("tiny", spec.id, "merged", merged)
    app = ExportApp("tiny", spec.id)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert screen.running and screen.job == folder
        assert screen.query_one("#merged", RadioButton).value and screen.query_one("#out", Input).value == str(merged)
        await wait_for(pilot, lambda: not screen.running, 90, "the reattached export")
        assert screen.result == merged and (merged / "config.json").exists()
        progress = [line.text for line in screen.query_one("#progress").lines]
        assert progress[0].startswith("Exporting merged to")
        assert "Loading the libraries" in " ".join(progress)  # its events are read from the first
