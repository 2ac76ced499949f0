"""The data screen: records from the file, one record as the model sees it, statistics.

Most tests run the screen against a small stand-in for `workbench data` that prints
the same JSON shapes and logs how it was called, so they check the screen alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import DataTable, Input, Select, Static

from screens.app import WorkbenchApp
from screens.data.render import LOSS_STYLE, MASKED_STYLE
from screens.data.screen import PAGE, DataScreen
from screens.data.split import SplitModal
from screens.project import ProjectScreen
from screens.widgets.histogram import Histogram
from tests.conftest import CHAT_RECORDS, write_jsonl
from workbench import project
from workbench.data.importer import import_file

SIZE = (120, 36)

FAKE = r'''
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_DATA_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
if "--fail" in args:
    print("Traceback (most recent call last):\n  File x\nRuntimeError: boom", file=sys.stderr)
    print("workbench: error: the base model 'nowhere' has no tokenizer", file=sys.stderr)
    sys.exit(2)
max_length = int(args[args.index("--max-length") + 1]) if "--max-length" in args else 128
if "--show" in args:
    n = int(args[args.index("--show") + 1])
    print(json.dumps({"index": n, "dataset": args[args.index("--dataset") + 1], "kind": "chat",
                      "record": {}, "tokens": 21, "loss_tokens": 9, "truncated": False,
                      "segments": [{"text": f"<|im_start|>user\nAdd one to {n}.<|im_end|>\n<|im_start|>assistant\n",
                                    "loss": False},
                                   {"text": f"{n} plus one is {n + 1}.<|im_end|>", "loss": True}]}))
else:
    print(json.dumps({"project": args[0], "datasets": [{"name": "chat", "kind": "chat", "records": 40,
                      "split": "train"}], "kinds": {"chat": 40},
                      "tokens": {"max_length": max_length, "min": 18, "median": 20, "p95": 22, "max": 90,
                                 "histogram": [{"lo": 0, "hi": 32, "count": 36}, {"lo": 32, "hi": 64, "count": 3},
                                               {"lo": 64, "hi": 96, "count": 1}],
                                 "truncated": 1 if max_length < 90 else 0},
                      "preflight": {"errors": ["no held-out split"], "warnings": ["only 40 records"]}}))
'''


@pytest.fixture
def fake(tmp_path, monkeypatch) -> tuple[list[str], Path]:
    script, log = tmp_path / "fake_data.py", tmp_path / "calls.jsonl"
    script.write_text(FAKE)
    monkeypatch.setenv("FAKE_DATA_LOG", str(log))
    return [sys.executable, str(script)], log


@pytest.fixture
def chat_project(home, chat_file) -> str:
    project.create("alpha")
    import_file("alpha", chat_file)
    return "alpha"


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


async def wait_until(pilot, condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the UI"
        await pilot.pause(0.1)


def shown(screen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def open_screen(pilot, name: str, command) -> DataScreen:
    screen = DataScreen(name, command=command)
    await pilot.app.push_screen(screen)
    await wait_until(pilot, lambda: screen.query_one("#records", DataTable).row_count > 0)
    return screen


async def test_table_lists_the_records(chat_project, fake):
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, chat_project, fake[0])
        table = screen.query_one("#records", DataTable)
        assert table.row_count == 40
        assert [str(c) for c in table.get_row_at(3)] == ["3", "chat", "Add one to 3.", "3 plus one is 4."]
        assert "records 1–40 of 40" in shown(screen, "#page-info")


async def test_resting_selection_shows_loss_tokens_in_their_own_colour(chat_project, fake, monkeypatch):
    command, log = fake
    monkeypatch.setattr("screens.data.screen.RENDER_DELAY", 1.5)  # a loaded machine's key presses stay inside it
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, chat_project, command)
        await pilot.press("down", "down", "down")  # inside the debounce: only the last one is asked
        head = lambda: shown(screen, "#render-head")  # noqa: E731
        await wait_until(pilot, lambda: head().startswith("record 3") and "learned" in head())
        content = screen.query_one("#rendered", Static).content
        assert isinstance(content, Text)
        styles = {content.plain[s.start:s.end]: str(s.style) for s in content.spans}
        assert styles["3 plus one is 4.<|im_end|>"] == LOSS_STYLE
        assert styles["<|im_start|>user\nAdd one to 3.<|im_end|>\n<|im_start|>assistant\n"] == MASKED_STYLE
        assert LOSS_STYLE != MASKED_STYLE
        assert "21 tokens" in shown(screen, "#render-head") and "9 learned" in shown(screen, "#render-head")
        asked = [c[c.index("--show") + 1] for c in calls(log) if "--show" in c]
        assert "1" not in asked and "2" not in asked and asked[-1] == "3"


async def test_statistics_draw_the_histogram_and_re_ask_for_a_new_max_length(chat_project, fake):
    command, log = fake
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, chat_project, command)
        await wait_until(pilot, lambda: "40 records" in shown(screen, "#stats-status"))
        bars = str(screen.query_one(Histogram).render()).splitlines()
        assert len(bars) == 3 and bars[0].count("█") > bars[1].count("█") > 0
        assert "0 records over 128 tokens" in shown(screen, "#truncated")
        preflight = screen.query_one("#preflight", Static).content
        assert {str(s.style) for s in preflight.spans} >= {"bold red", "yellow"}
        await pilot.press("m")
        assert screen.query_one("#max-length", Input).has_focus
        await pilot.press(*"64", "enter")  # focusing selects the old value
        await wait_until(pilot, lambda: "1 record over 64 tokens" in shown(screen, "#truncated"))
        assert ["alpha", "--json", "--dataset", "chat", "--max-length", "64"] in calls(log)


async def test_a_failing_child_shows_its_error_line(chat_project, fake):
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, chat_project, [*fake[0], "--fail"])
        message = "the base model 'nowhere' has no tokenizer"
        await wait_until(pilot, lambda: message in shown(screen, "#stats-status"))
        await wait_until(pilot, lambda: message in shown(screen, "#render-head"))
        assert "Traceback" not in shown(screen, "#stats-status") + shown(screen, "#render-head")


async def test_datasets_switch_and_long_files_page(chat_project, fake, tmp_path):
    many = [{"prompt": f"Say {i}.", "completion": f"{i}"} for i in range(PAGE + 20)]
    import_file("alpha", write_jsonl(tmp_path / "many.jsonl", many))
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, chat_project, fake[0])
        await pilot.press("right_square_bracket")
        await wait_until(pilot, lambda: screen.dataset == "many" and "of 520" in shown(screen, "#page-info"))
        table = screen.query_one("#records", DataTable)
        assert table.row_count == PAGE
        await pilot.press("n")
        await wait_until(pilot, lambda: table.row_count == 20)
        assert [str(c) for c in table.get_row_at(0)][:3] == [str(PAGE), "prompt_completion", f"Say {PAGE}."]
        await pilot.press("left_square_bracket")
        await wait_until(pilot, lambda: screen.dataset == "chat" and table.row_count == len(CHAT_RECORDS))


async def test_d_or_the_palette_on_the_project_screen_opens_the_data_screen(chat_project, fake, monkeypatch):
    monkeypatch.setattr(DataScreen, "COMMAND", tuple(fake[0]))
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        await pilot.app.push_screen(ProjectScreen(chat_project))
        await pilot.pause()
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, DataScreen))
        assert pilot.app.screen.project == chat_project
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ProjectScreen))
        await pilot.press("ctrl+p", *"Data")  # the same action from the command palette
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, DataScreen))


def has_data_command() -> bool:
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "data", "--help"], capture_output=True)
    return out.returncode == 0


@pytest.mark.skipif(not has_data_command(), reason="`workbench data` is not there yet")
async def test_real_command_renders_a_record_of_the_tiny_project(tiny_project):
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, tiny_project, None)
        await wait_until(pilot, lambda: "learned" in shown(screen, "#render-head"), timeout=120)
        content = screen.query_one("#rendered", Static).content
        learned = "".join(content.plain[s.start:s.end] for s in content.spans if str(s.style) == LOSS_STYLE)
        assert "0 plus one is 1." in learned and "Add one to 0." not in learned
        await wait_until(pilot, lambda: "40 records" in shown(screen, "#stats-status"), timeout=120)


async def test_a_project_without_data_says_how_to_import(home, fake):
    project.create("empty")
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        screen = DataScreen("empty", command=fake[0])
        await pilot.app.push_screen(screen)
        await wait_until(pilot, lambda: "No data yet" in shown(screen, "#page-info"))
        assert screen.query_one("#records", DataTable).row_count == 0


async def test_statistics_follow_the_selected_dataset_or_all_of_them(chat_project, fake, tmp_path):
    command, log = fake
    import_file("alpha", write_jsonl(tmp_path / "say.jsonl", [{"prompt": "Say 1.", "completion": "1"}]))
    stats_calls = lambda: [c for c in calls(log) if "--show" not in c]  # noqa: E731
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, chat_project, command)
        await wait_until(pilot, lambda: "40 records" in shown(screen, "#stats-status"))
        assert stats_calls() == [["alpha", "--json", "--dataset", "chat"]]
        await pilot.press("right_square_bracket")
        await wait_until(pilot, lambda: ["alpha", "--json", "--dataset", "say"] in stats_calls())
        screen.query_one("#stats-scope", Select).value = "all"
        await wait_until(pilot, lambda: stats_calls()[-1] == ["alpha", "--json"])
        await pilot.press("left_square_bracket")  # the project-wide figures stay put
        await wait_until(pilot, lambda: screen.dataset == "chat")
        await pilot.pause(0.3)
        assert stats_calls()[-1] == ["alpha", "--json"] and len(stats_calls()) == 3


async def test_h_holds_out_an_eval_split_with_the_real_command(chat_project, fake):
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, chat_project, fake[0])
        await pilot.press("ctrl+p", *"Hold out")  # the palette finds it as well as the key
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, SplitModal))
        modal = pilot.app.screen
        size = modal.query_one("#split-size", Input)
        size.value = "abc"
        await pilot.press("enter")
        assert "neither a fraction" in shown(modal, "#split-error") and pilot.app.screen is modal

        size.value = "40"  # all of it: the command refuses, and says why
        await pilot.press("enter")
        await wait_until(pilot, lambda: "Cannot hold out 40 of 40" in shown(modal, "#split-error"))
        assert project.load("alpha").dataset("chat").records == 40

        size.value = "25%"
        await pilot.press("enter")
        await wait_until(pilot, lambda: pilot.app.screen is screen)
        result = "'chat': 30 record(s) for training; 'chat-eval': 10 record(s) held out for evaluation."
        await wait_until(pilot, lambda: result in shown(screen, "#split-result"))
        table = screen.query_one("#records", DataTable)
        await wait_until(pilot, lambda: table.row_count == 30 and "chat-eval" in [d.name for d in screen.datasets])
        assert screen.dataset == "chat"
        assert [d.split for d in project.load("alpha").datasets] == ["train", "eval"]
        await pilot.press("right_square_bracket")  # an eval split is not split again
        await wait_until(pilot, lambda: screen.dataset == "chat-eval")
        assert screen.check_action("split", ()) is False
