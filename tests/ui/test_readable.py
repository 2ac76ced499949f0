"""What a person on a small or colourless terminal needs: every screen's footer fits 80 columns with
its key help, the keys panel and the palette name every binding, choices and learned tokens read
without colour, tables show numbers whole, and a sampler's stop says what it keeps."""

from __future__ import annotations

import io

import pytest
from rich.cells import cell_len
from rich.console import Console
from textual.actions import parse as parse_action
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, HelpPanel
from textual.widgets._footer import FooterKey
from textual.widgets._key_panel import BindingsTable

from screens.app import WorkbenchApp
from screens.commands import ScreenCommands
from screens.data.render import render_head, render_segments
from screens.widgets.fit_table import FitTable
from screens.widgets.footer import KeyFooter, kept
from screens.widgets.toggles import MarkedCheckbox, MarkedRadioButton
from tests.ui.widths import hidden_numbers
from tests.ui.world import SCREENS, data_screen, world  # noqa: F401 - a fixture
from workbench.registry.stopping import on_stop


def described(screen) -> list[Binding]:
    """The screen's bindings a person can use now: described, and not ruled out by the screen's state."""
    def allowed(binding: Binding) -> bool:
        _, action, parameters = parse_action(binding.action)
        return screen.check_action(action, parameters) is not False

    return [b for b in type(screen).BINDINGS if isinstance(b, Binding) and b.description and allowed(b)]


@pytest.mark.parametrize("name", SCREENS)
async def test_the_footer_fits_and_the_keys_panel_and_palette_name_every_binding(world, name):  # noqa: F811
    app = WorkbenchApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await SCREENS[name](pilot, world)
        await pilot.pause(0.2)
        screen = app.screen
        footer = screen.query_one(KeyFooter)

        def shown_width() -> int:
            return sum(w.outer_size.width + w.styles.margin.width for w in footer.children if w.display)

        def settled() -> bool:
            keys = any(isinstance(w, FooterKey) and w.description == "Keys" for w in footer.children if w.display)
            return shown_width() <= 80 and keys

        for _ in range(50):  # a footer rebuilt for new keys (the screen's state changed) is fitted a frame later
            if settled():
                break
            await pilot.pause(0.1)
        shown = [w for w in footer.children if w.display]
        assert shown_width() <= 80
        assert any(isinstance(w, FooterKey) and w.description == "Keys" for w in shown), "no key help in the footer"

        await pilot.press("f1")
        await pilot.pause()
        panel = screen.query_one(HelpPanel)
        console = Console(width=200, record=True, file=io.StringIO())
        console.print(panel.query_one(BindingsTable).render_bindings_table())
        listed = console.export_text()
        palette = {name for name, _, _ in ScreenCommands(screen)._commands()}
        for binding in described(screen):
            assert binding.description in listed, f"{binding.description} is not in the keys panel"
            assert binding.description in palette, f"{binding.description} is not in the palette"
        await pilot.press("f1")
        await pilot.pause()
        assert not screen.query(HelpPanel)


async def test_question_mark_opens_the_keys_panel_and_the_footer_says_f1_while_typing(world):  # noqa: F811
    app = WorkbenchApp()
    async with app.run_test(size=(120, 36)) as pilot:
        await SCREENS["project"](pilot, world)
        await pilot.press("question_mark")
        await pilot.pause()
        assert app.screen.query(HelpPanel)
        keys = Binding("question_mark,f1", "toggle_keys", "Keys", id="app.keys")
        assert app.get_key_display(keys) == "?"
        await pilot.press("question_mark")
        await pilot.press("p")  # the playground: the message field has the focus, and takes a `?`
        await pilot.pause(0.3)
        assert app.get_key_display(keys) == "F1"


def test_the_footer_keeps_the_first_keys_that_fit_and_always_the_key_help():
    assert kept([10, 10, 10, 8], room=30, always=3) == [True, True, False, True]
    assert kept([10, 30, 5, 8], room=40, always=3) == [True, False, False, True]  # no later key jumps a cut one
    assert kept([5, 5], room=80, always=None) == [True, True]


@pytest.mark.parametrize("opening", range(4))
async def test_the_record_table_shares_the_width_from_the_first_opening(world, opening):  # noqa: F811
    app = WorkbenchApp()
    async with app.run_test(size=(120, 36)) as pilot:
        await data_screen(pilot, world)
        table = app.screen.query_one("#records", DataTable)
        widths = {key.value: column.width for key, column in table.columns.items()}
        room = table.size.width - table.styles.scrollbar_size_vertical - 2 * table.cell_padding * 4
        assert widths["index"] == 2  # records 0 to 39
        assert abs(widths["prompt"] - widths["answer"]) <= 1
        assert widths["index"] + widths["kind"] + widths["prompt"] + widths["answer"] == room
        assert hidden_numbers(app.screen) == []
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)
        assert table.columns["prompt"].width < widths["prompt"] and table.columns["index"].width == 2


class TableApp(App):
    def compose(self) -> ComposeResult:
        yield FitTable(flexible=("text",), id="t")

    def on_mount(self) -> None:
        table = self.query_one(FitTable)
        table.add_column("n", key="n")
        table.add_column("text", key="text")
        table.add_column("steps", key="steps")
        for n in (1, 10, 12345):
            table.add_row(str(n), "word " * 30, f"{n}/{n}")
        table.fit()


async def test_a_flexible_column_never_cuts_a_number():
    async with TableApp().run_test(size=(30, 10)) as pilot:
        await pilot.pause()
        table = pilot.app.query_one(FitTable)
        table.add_row("7", "1234567890123", "1/1")
        table.fit()
        assert table.columns["n"].width == 5 and table.columns["steps"].width == cell_len("12345/12345")
        assert table.columns["text"].width == 13  # its number, though the room left is less
        assert hidden_numbers(pilot.app.screen) == []


def test_a_choice_and_a_tick_read_without_colour():
    assert MarkedRadioButton("a", value=True).BUTTON_INNER == "●"
    assert MarkedRadioButton("a", value=False).BUTTON_INNER == "○"
    assert MarkedCheckbox("a", value=True).BUTTON_INNER == "✔"
    assert MarkedCheckbox("a", value=False).BUTTON_INNER == " "


async def test_the_export_formats_read_without_colour(world, monkeypatch):  # noqa: F811
    monkeypatch.setenv("NO_COLOR", "1")
    app = WorkbenchApp()
    async with app.run_test(size=(120, 36)) as pilot:
        assert app.no_color
        await SCREENS["export"](pilot, world)
        lines = [str(button.render()) for button in app.screen.query(MarkedRadioButton)]
        assert [line.lstrip("▐")[0] for line in lines] == ["○", "○", "●", "○"]


def test_learned_tokens_are_marked_without_colour():
    segments = [{"text": "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", "loss": False},
                {"text": "Hello", "loss": True}, {"text": "<|im_end|>", "loss": True}, {"text": "\n", "loss": False},
                {"text": "Again", "loss": True}]
    assert render_segments(segments).plain == \
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n⟦Hello<|im_end|>⟧\n⟦Again⟧"
    assert "⟦learned (loss)⟧  masked (prompt, system)" in render_head({"index": 0}).plain


def test_the_app_takes_a_16_colour_terminal_at_its_word(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-16color")
    monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.delenv("TEXTUAL_COLOR_SYSTEM", raising=False)
    assert WorkbenchApp().console.color_system == "standard"


def test_a_stop_says_what_the_job_keeps():
    assert on_stop("sft") == "it saves a checkpoint, then exits"
    assert on_stop("sample") == "it keeps the groups it sampled, then exits"
    assert on_stop("judge") == "it keeps the rankings it committed, then exits"
    assert "records" in on_stop("synth") and "checkpoint" not in on_stop("synth")
    assert on_stop("unknown-method") == "it saves a checkpoint, then exits"


def test_the_monitor_says_a_sampler_keeps_its_groups(home):
    from screens.monitor import MonitorScreen

    screen = MonitorScreen("p", "r")
    screen.method, screen.stopping = "sample", True
    assert screen._message() == "stopping… it keeps the groups it sampled, then exits"
