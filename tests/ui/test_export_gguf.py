"""The GGUF part of the export screen: quant checkboxes only for GGUF, per-file lines from the output."""

from __future__ import annotations

from textual.widgets import Checkbox

from screens.export_gguf import QuantPicker, file_line
from tests.ui.test_export_screen import ExportApp


def test_file_lines_keep_writes_and_verifications_only():
    assert file_line("wrote run-q4_k_m.gguf (1.2 MiB)").plain == "✔ run-q4_k_m.gguf (1.2 MiB)"
    assert "top-1 0.990" in file_line("verify run-q4_k_m.gguf: Q4_K_M: top-1 0.990, passed").plain
    assert file_line("Quantizing to Q4_K_M") is None


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
