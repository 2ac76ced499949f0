"""The method screen: a form built from the params dataclass, checked by the engine, that starts a run."""

from __future__ import annotations

import dataclasses
import importlib.machinery
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
from workbench.methods.sft_params import SFTParams
from workbench.params import describe, param

SIZE = (120, 36)


class MethodApp(WorkbenchApp):
    """The real app, opened straight on the method screen of one project."""

    def __init__(self, project_name: str, method: str | None = None) -> None:
        super().__init__()
        self.project_name = project_name
        self.method = method

    def on_mount(self) -> None:
        self.push_screen(MethodScreen(self.project_name, self.method))


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


async def test_the_screen_opens_on_the_method_it_is_given(alpha):
    """The list's own first highlight, as it mounts, neither replaces the method nor breaks the form."""
    async with MethodApp(alpha, "grpo").run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.pause(0.3)
        screen = pilot.app.screen
        assert screen.method.name == "grpo"
        assert screen.query_one("#methods").highlighted == screen.query_one("#methods").get_option_index("grpo")
        assert screen.query("#param-num_generations") and screen.query("#error-num_generations")


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
            await wait_until(pilot, lambda: error.display and "above 0, not '-2'" in text(error))  # a busy machine
            await pilot.press("ctrl+s")
            launch_error = screen.query_one("#launch-error", Static)
            await wait_until(pilot, lambda: "Fix the training data before starting: chat:" in text(launch_error))
            assert isinstance(app.screen, MethodScreen) and not list(locations.runs_dir(tiny_project).iterdir())

            await set_weight(pilot, 0, "3")
            await wait_until(pilot, lambda: not error.display)
            await set_weight(pilot, 1, "1")
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: isinstance(app.screen, monitor_screen))
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


FAKE_ESTIMATE = """
import json, sys
args = sys.argv[1:]
with open(sys.argv[0] + ".calls", "a") as log:
    log.write(" ".join(args) + "\\n")
values = dict(a.split("=", 1) for a in args[args.index("--set") + 1::2]) if "--set" in args else {}
if values.get("batch_size") == "13":
    sys.exit("workbench: error: thirteen is unlucky")
batch = int(values.get("batch_size", 1))
modes = [{"mode": m, "trainable": t, "total": 2_000_000, "memory": batch * 3 * 1024 ** 3}
         for m, t in (("full", 2_000_000), ("lora", 16_384), ("last_layer", 1_500))]
print(json.dumps({"model": "fake-model", "device": "cpu", "precision": "fp32", "batch_size": batch,
                  "max_length": int(values.get("max_length", 0)), "chosen": values.get("mode"),
                  "free_bytes": 8 * 1024 ** 3, "where": "available RAM", "modes": modes}))
"""


@pytest.fixture
def fake_estimate(tmp_path, monkeypatch):
    """The estimate panel runs a stand-in command that logs each call; returns the log's path."""
    from screens.widgets.mode_estimate import ModeEstimate

    script = tmp_path / "estimate.py"
    script.write_text(FAKE_ESTIMATE)
    monkeypatch.setattr(ModeEstimate, "COMMAND", (sys.executable, str(script)))
    monkeypatch.setattr(ModeEstimate, "DELAY", 0.3)
    return tmp_path / "estimate.py.calls"


def calls(log) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


async def test_a_preset_fills_the_fields_it_sets(alpha, fake_estimate):
    async with MethodApp(alpha).run_test(size=SIZE) as pilot:
        screen = pilot.app.screen
        before = screen.query_one("#param-learning_rate", Input).value
        screen.query_one("#preset", Select).value = "quick test"
        await pilot.pause()
        assert screen.query_one("#param-max_steps", Input).value == "20"
        assert screen.query_one("#param-batch_size", Input).value == "2"
        assert screen.query_one("#param-lora_r", Input).value == "8"
        assert screen.query_one("#param-mode", Select).value == "lora"
        assert screen.query_one("#param-learning_rate", Input).value == before  # sft's quick test keeps 2e-4
        screen.query_one("#preset", Select).value = "low memory"
        await pilot.pause()
        assert screen.query_one("#param-gradient_checkpointing", Switch).value is True
        assert screen.query_one("#param-grad_accum", Input).value == "16"
        assert screen.query_one("#param-max_steps", Input).value == "20"  # not set by this preset: kept

        screen.query_one("#methods").highlighted = screen.query_one("#methods").get_option_index("classifier")
        await pilot.pause()
        screen.query_one("#preset", Select).value = "quick test"
        await pilot.pause()
        assert screen.query_one("#param-mode", Select).value == "last_layer"
        assert screen.query_one("#param-learning_rate", Input).value == "0.001"


async def test_the_estimate_panel_follows_the_form(alpha, fake_estimate):
    from screens.widgets.mode_estimate import ModeEstimate

    async with MethodApp(alpha).run_test(size=SIZE) as pilot:
        screen = pilot.app.screen
        panel = screen.query_one("#estimate", ModeEstimate)
        await wait_until(pilot, lambda: panel.report is not None, 30)
        shown = text(panel)
        assert "fake-model on cpu fp32, batch 4 x 512" in shown
        assert "▶ lora" in shown and "16.4K" in shown and "12.00 GiB" in shown and "8.0 GiB available RAM" in shown
        assert "· full" in shown and "2M" in shown and "· last_layer" in shown and "1.5K" in shown
        first = len(calls(fake_estimate))
        assert first == 1 and "--method sft --json" in calls(fake_estimate)[0]

        for typed in ("1", "16"):  # quick changes: one child once they stop
            screen.query_one("#param-batch_size", Input).value = typed
        screen.query_one("#param-mode", Select).value = "full"
        await wait_until(pilot, lambda: panel.report and panel.report["batch_size"] == 16 and
                         panel.answered == panel.asked, 30)
        assert len(calls(fake_estimate)) == first + 1
        assert "batch_size=16" in calls(fake_estimate)[-1] and "mode=full" in calls(fake_estimate)[-1]
        assert "▶ full" in text(panel) and "48.00 GiB" in text(panel)

        await type_into(pilot, "epochs", "5")  # not a field the estimate depends on
        await pilot.pause(0.6)
        assert len(calls(fake_estimate)) == first + 1

        await type_into(pilot, "batch_size", "0")
        assert "Fix the marked fields" in text(panel)
        await type_into(pilot, "batch_size", "13")
        await wait_until(pilot, lambda: "No estimate" in text(panel), 30)
        assert "No estimate: thirteen is unlucky" in text(panel)


async def test_the_estimate_panel_shows_a_real_child_s_numbers(tiny_project):
    """`workbench estimate --json` on the tiny model, in a child process, as the app runs it."""
    from screens.widgets.mode_estimate import ModeEstimate

    async with MethodApp(tiny_project).run_test(size=SIZE) as pilot:
        panel = pilot.app.screen.query_one("#estimate", ModeEstimate)
        await wait_until(pilot, lambda: panel.report is not None, 120)
        report = panel.report
        assert [m["mode"] for m in report["modes"]] == ["full", "lora", "qlora", "last_layer"]
        full = report["modes"][0]
        assert full["trainable"] == full["total"] == 1_591_456  # the tiny model's parameters, tied head once
        assert "tiny-llama-v1 on cpu fp32" in text(panel) and "▶ lora" in text(panel) and "1.59M" in text(panel)


FAKE_METHOD_HELP = ("Which reward functions score each sampled answer, separated by commas; each name is a "
                    "built-in reward or a function in the project's rewards file, and its weight follows a colon.")


@dataclasses.dataclass
class FakeRewardParams:
    rewards: str = param("json_valid:1.0", FAKE_METHOD_HELP, group="rewards")
    strict: bool = param(False, "Refuse answers that are not valid JSON.", group="rewards")
    sampler: str = param("greedy", "How answers are sampled.", choices=("greedy", "top_p"), group="rewards")
    samples: int = param(4, "Answers per prompt.", min=1, max=64, group="rewards")


@pytest.fixture
def fake_methods(monkeypatch):
    """A generating method and a reward method with every kind of field, as other modules may add."""
    from workbench.registry import METHODS, Method

    monkeypatch.setitem(METHODS, "zz-rewarded", Method(
        name="zz-rewarded", title="Rewarded sampling", summary="Samples scored by rewards.",
        data_kinds=("chat",), params=FakeRewardParams, runner="nowhere:run", kind="train"))
    monkeypatch.setitem(METHODS, "aa-sample", Method(
        name="aa-sample", title="Sample answers", summary="Writes samples.", data_kinds=("chat",),
        params=FakeRewardParams, runner="nowhere:run", kind="generate"))


async def test_methods_are_listed_by_kind_training_first(alpha, fake_methods, fake_estimate):
    from textual.widgets import OptionList

    async with MethodApp(alpha).run_test(size=SIZE) as pilot:
        options = pilot.app.screen.query_one("#methods", OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert ids[0] == "kind:train" and options.get_option_at_index(0).disabled
        generate = ids.index("kind:generate")
        train_ids = [m.name for m in methods_of("train")]
        assert ids[1:generate] == train_ids and "zz-rewarded" in train_ids
        assert ids[generate + 1:] == [m.name for m in methods_of("generate")] and "aa-sample" in ids[generate + 1:]


def methods_of(kind: str):
    from workbench.registry import of_kind

    return of_kind(kind)


async def test_any_method_s_params_make_a_form_and_rewards_offer_a_dry_run(alpha, fake_methods, fake_estimate,
                                                                           monkeypatch):
    opened = []

    class RewardDryRun(Screen):
        def __init__(self, project, method, values, datasets) -> None:
            super().__init__()
            opened.append((project, method, values, datasets))

    monkeypatch.setattr("screens.method.RewardDryRun", RewardDryRun)

    async with MethodApp(alpha).run_test(size=SIZE) as pilot:
        screen = pilot.app.screen
        assert not screen.query_one("#dry-run").display  # sft has no rewards
        options = screen.query_one("#methods")
        options.highlighted = options.get_option_index("zz-rewarded")
        await pilot.wait_for_scheduled_animations()  # the list scrolls to an option below its fold first
        await pilot.pause()
        assert isinstance(screen.query_one("#param-rewards"), Input)
        assert isinstance(screen.query_one("#param-strict"), Switch)
        assert isinstance(screen.query_one("#param-sampler"), Select)
        help_text = text(screen.query_one("#param-rewards").parent.query_one(".help", Static))
        assert help_text == FAKE_METHOD_HELP  # long help is wrapped, not cut
        assert screen.query_one("#param-rewards").parent.region.height > 1
        assert screen.query_one("#dry-run").display
        await type_into(pilot, "rewards", "json_valid:2")
        screen.query_one("#dry-run").press()
        await pilot.pause()
        assert isinstance(pilot.app.screen, RewardDryRun)
        project_name, method, values, datasets = opened[0]
        assert (project_name, method, datasets) == (alpha, "zz-rewarded", ["chat"])
        assert values == {"rewards": "json_valid:2", "strict": "false", "sampler": "greedy", "samples": "4"}


async def test_where_it_runs_sends_the_run_to_slurm_with_the_form_s_settings(tiny_project, tmp_path, monkeypatch,
                                                                            monitor_screen):
    """The form's last section: this machine by default; a Slurm cluster shows its settings, refuses a bad
    one inline, and submits with what the person set (the same runtime as `train --target slurm`)."""
    from tests.slurm_fakes import FakeSlurm
    from workbench.jobs import slurm_preflight

    monkeypatch.setenv(slurm_preflight.SHARED_MOUNTS_ENV, "/")
    fake = FakeSlurm(tmp_path / "fake-slurm", monkeypatch)
    app = MethodApp(tiny_project)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert not screen.query_one("#where-partition").parent.display  # this machine: no Slurm settings shown
        screen.query_one("#where-target", Select).value = "slurm"
        await pilot.pause()
        assert screen.query_one("#where-partition").parent.display
        await type_into(pilot, "max_steps", "2")
        for name, value in (("partition", "gpu"), ("nodes", "0"), ("time", "2:00:00")):
            box = screen.query_one(f"#where-{name}", Input)
            box.value = value
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "nodes must be a whole number of at least 1, not '0'" in text(screen.query_one("#launch-error", Static))
        assert not list(locations.runs_dir(tiny_project).iterdir())

        screen.query_one("#where-nodes", Input).value = "2"
        screen.query_one("#where-oom_retry", Switch).value = False
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, monitor_screen), 30)
        run_id = app.screen.run_id
    job = read_toml(locations.run_dir(tiny_project, run_id) / "job.toml")
    assert job["runtime"]["target"] == "slurm" and job["runtime"]["oom_retry"] is False
    assert {k: job["runtime"]["slurm"][k] for k in ("partition", "nodes", "time")} == {
        "partition": "gpu", "nodes": 2, "time": "2:00:00"}
    script = fake.submitted()
    assert "#SBATCH --partition=gpu" in script and "#SBATCH --nodes=2" in script


async def test_the_estimate_reads_the_datasets_ticked(alpha, tmp_path, fake_estimate):
    say = [{"prompt": f"Say {i}.", "completion": f"{i}"} for i in range(10)]
    import_file(alpha, write_jsonl(tmp_path / "say.jsonl", say))
    async with MethodApp(alpha).run_test(size=SIZE) as pilot:
        screen = pilot.app.screen
        await wait_until(pilot, lambda: calls(fake_estimate), 30)
        assert "--dataset" not in calls(fake_estimate)[-1]  # both ticked: every dataset the method reads
        screen.query_one("#pick-1", Checkbox).value = False  # 'say' left out
        await wait_until(pilot, lambda: "--dataset" in calls(fake_estimate)[-1], 30)
        assert calls(fake_estimate)[-1].split("--dataset ")[1].split()[0] == "chat"
