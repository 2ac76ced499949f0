"""The method screen: a form built from the params dataclass, checked by the engine, that starts a run."""

from __future__ import annotations

import importlib.util
import sys
import time
import types

import pytest
from textual.screen import Screen
from textual.widgets import Checkbox, Input, Select, Static, Switch

from screens.app import WorkbenchApp
from screens.method import MethodScreen
from tests.conftest import write_jsonl
from workbench import locations, project
from workbench.data.importer import import_file
from workbench.files import read_toml
from workbench.jobs import store
from workbench.methods.params import describe
from workbench.methods.sft_params import SFTParams

SIZE = (120, 36)


class MethodApp(WorkbenchApp):
    """The real app, opened straight on the method screen of one project."""

    def __init__(self, project_name: str) -> None:
        super().__init__()
        self.project_name = project_name

    def on_mount(self) -> None:
        self.push_screen(MethodScreen(self.project_name))


def text(widget: Static) -> str:
    return str(widget.render())


async def wait_until(pilot, condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the UI"
        await pilot.pause(0.2)


async def type_into(pilot, field: str, value: str) -> None:
    box = pilot.app.screen.query_one(f"#param-{field}", Input)
    box.focus()
    box.value = ""
    await pilot.press(*value)
    await pilot.pause()


@pytest.fixture
def alpha(home, chat_file) -> str:
    project.create("alpha")
    import_file("alpha", chat_file)
    return "alpha"


async def test_one_widget_per_parameter_with_its_help(alpha):
    async with MethodApp(alpha).run_test(size=SIZE) as pilot:
        screen = pilot.app.screen
        for info in describe(SFTParams):
            widget = screen.query_one(f"#param-{info.name}")
            expected = Select if info.choices else Switch if info.kind is bool else Input
            assert isinstance(widget, expected), info.name
            help_text = text(widget.parent.query_one(".help", Static))
            assert help_text.startswith(info.help), info.name
        assert screen.query_one("#param-mode", Select).value == "lora"
        assert text(screen.query_one("#only-dataset", Static)) == "chat (40 chat)"  # one dataset: just its name
        assert not screen.query("#mix")


async def test_bad_value_is_refused_inline_and_nothing_starts(alpha):
    async with MethodApp(alpha).run_test(size=SIZE) as pilot:
        screen = pilot.app.screen
        await type_into(pilot, "learning_rate", "abc")
        error = screen.query_one("#error-learning_rate", Static)
        assert error.display and "learning_rate: 'abc' is not a valid float." in text(error)

        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(pilot.app.screen, MethodScreen)
        assert "Fix 1 field(s) before starting: learning_rate." in text(screen.query_one("#launch-error", Static))
        assert screen.focused is screen.query_one("#param-learning_rate")
        assert not list(locations.runs_dir(alpha).iterdir())

        await type_into(pilot, "learning_rate", "1e-4")
        assert not error.display
        await type_into(pilot, "batch_size", "0")
        assert "below the minimum 1" in text(screen.query_one("#error-batch_size", Static))


async def test_a_project_without_data_cannot_start(home):
    project.create("empty")
    async with MethodApp("empty").run_test(size=SIZE) as pilot:
        screen = pilot.app.screen
        assert "no training data yet" in text(screen.query_one("#data-info", Static))
        await pilot.press("ctrl+s")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert "import a dataset first" in text(screen.query_one("#launch-error", Static))
        assert isinstance(pilot.app.screen, MethodScreen)


@pytest.fixture
def monitor_screen(monkeypatch):
    """The monitor screen, or a stand-in while `screens/monitor.py` does not exist yet."""
    if importlib.util.find_spec("screens.monitor") is None:
        module = types.ModuleType("screens.monitor")

        class MonitorScreen(Screen):
            def __init__(self, project: str, run_id: str) -> None:
                super().__init__()
                self.project, self.run_id = project, run_id

        module.MonitorScreen = MonitorScreen
        monkeypatch.setitem(sys.modules, "screens.monitor", module)
    return importlib.import_module("screens.monitor").MonitorScreen


@pytest.mark.e2e
async def test_start_from_the_form_opens_the_monitor(tiny_project, monitor_screen):
    run_id = None
    try:
        app = WorkbenchApp()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.app.workers.wait_for_complete()
            await pilot.press("enter")  # open "tiny"
            await pilot.app.workers.wait_for_complete()
            await pilot.press("t")
            await pilot.pause()
            assert isinstance(app.screen, MethodScreen)
            await type_into(pilot, "max_steps", "3")
            await type_into(pilot, "eval_steps", "0")
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: isinstance(app.screen, monitor_screen), 30)
            run_id = app.screen.run_id
            run_dir = locations.run_dir(tiny_project, run_id)
            assert (run_dir / "job.toml").exists()
            assert "max_steps = 3" in (run_dir / "job.toml").read_text()
            await pilot.press("escape")  # the monitor goes back to the project, not to the form
            await wait_until(pilot, lambda: type(app.screen).__name__ == "ProjectScreen", 10)
    finally:
        if run_id:
            try:
                store.stop(tiny_project, run_id)
            except store.RunError:
                pass
            store.wait(tiny_project, run_id, timeout=120)


async def test_the_form_starts_from_the_project_s_own_values(alpha):
    tuned = project.load(alpha)
    tuned.defaults = {"sft": {"learning_rate": 0.001, "mode": "full", "gradient_checkpointing": True}}
    tuned.save()
    async with MethodApp(alpha).run_test(size=SIZE) as pilot:
        screen = pilot.app.screen
        assert screen.query_one("#param-learning_rate", Input).value == "0.001"
        assert screen.query_one("#param-mode", Select).value == "full"
        assert screen.query_one("#param-gradient_checkpointing", Switch).value is True
        assert screen.query_one("#param-epochs", Input).value == "3.0"
        assert "Set by the project: gradient_checkpointing, learning_rate, mode." in text(
            screen.query_one("#data-info", Static))


async def set_weight(pilot, index: int, value: str) -> None:
    box = pilot.app.screen.query_one(f"#weight-{index}", Input)
    box.focus()
    box.value = ""
    await pilot.press(*value)
    await pilot.pause()


@pytest.mark.e2e
async def test_two_datasets_weighted_3_to_1_are_recorded_in_the_job(tiny_project, tmp_path, monitor_screen):
    say = [{"prompt": f"Say {i}.", "completion": f"{i}"} for i in range(10)]
    import_file(tiny_project, write_jsonl(tmp_path / "say.jsonl", say))
    run_id = None
    try:
        app = MethodApp(tiny_project)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            assert [str(c.label) for c in screen.query(Checkbox)] == ["chat (40 chat)", "say (10 prompt_completion)"]
            assert not screen.query_one("#weight-0").display  # proportional by default: no weights asked
            screen.query_one("#mix", Select).value = "weights"
            await pilot.pause()
            assert screen.query_one("#weight-0").display
            await type_into(pilot, "max_steps", "3")
            await type_into(pilot, "eval_steps", "0")

            await set_weight(pilot, 0, "-2")
            error = screen.query_one("#weight-error-0", Static)
            assert error.display and "above 0, not '-2'" in text(error)
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert "Fix the training data before starting: chat:" in text(screen.query_one("#launch-error", Static))
            assert isinstance(app.screen, MethodScreen) and not list(locations.runs_dir(tiny_project).iterdir())

            await set_weight(pilot, 0, "3")
            assert not error.display
            await set_weight(pilot, 1, "1")
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: isinstance(app.screen, monitor_screen), 30)
            run_id = app.screen.run_id
        job = read_toml(locations.run_dir(tiny_project, run_id) / "job.toml")
        assert [(s["dataset"], s["weight"]) for s in job["train"]] == [("chat", 3.0), ("say", 1.0)]
    finally:
        if run_id:
            try:
                store.stop(tiny_project, run_id)
            except store.RunError:
                pass
            store.wait(tiny_project, run_id, timeout=120)
