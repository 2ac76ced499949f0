"""The GGUF part of the export screen: quant checkboxes only for GGUF, per-file lines from the export's
`artifact` events."""

from __future__ import annotations

from textual.widgets import Checkbox

from screens.export.gguf import QuantPicker, file_line
from workbench.run.events import Artifact
from tests.ui.test_export_screen import ExportApp


def test_a_file_and_its_verification_each_get_a_line():
    path = "/x/exports/gguf/run-q4_k_m.gguf"
    assert file_line(Artifact(path=path, size=1258291)).plain == "✔ run-q4_k_m.gguf (1.2 MiB)"
    passed = file_line(Artifact(path=path, size=1258291, verification="Q4_K_M: top-1 0.990, passed", passed=True))
    assert passed.plain == "  ✔ run-q4_k_m.gguf: Q4_K_M: top-1 0.990, passed"
    failed = file_line(Artifact(path=path, size=1258291, verification="Q4_K_M: top-1 0.400, FAILED", passed=False))
    assert failed.plain.startswith("  • ") and str(failed.spans[0].style) == "yellow"


async def test_quant_types_show_for_gguf_and_are_passed_on(home):
    app = ExportApp("demo", "run-1")
    async with app.run_test(size=(120, 40)) as pilot:
        picker = app.screen.query_one(QuantPicker)
        assert not picker.display
        await pilot.click("#gguf")
        assert picker.display and picker.selected == ["Q4_K_M"]
        app.screen.query_one("#q-Q8_0", Checkbox).value = True
        await pilot.pause()
        assert picker.selected == ["Q4_K_M", "Q8_0"]
        await pilot.click("#gguf-lora")
        assert not picker.display


async def test_the_chat_check_shows_for_both_gguf_formats_and_can_be_turned_off(home, monkeypatch):
    app = ExportApp("demo", "run-1")
    calls = []
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        monkeypatch.setattr(screen, "run_export", lambda *args: calls.append(args))
        check = screen.query_one("#chat-check", Checkbox)
        assert not check.display
        await pilot.click("#gguf-lora")
        assert check.display and check.value
        check.value = False
        await pilot.pause()
        screen.action_start()
        await pilot.pause()
    assert calls and calls[0][0] == "gguf-lora" and calls[0][-1] is False
