"""Fixed projects to open every main screen on, and how a person opens each from the projects home.

Nothing here moves between runs: imports and clocks are frozen, the machine panel reads fixed
figures, the child processes (data render, memory estimate) are stand-ins that print fixed JSON and
the playground talks to scripted servers. Used by the snapshots and the key and width checks.
"""

from __future__ import annotations

import sys
import time

import pytest
from textual.widgets import DataTable, Input, RadioButton, Static

from tests.ui.recorded import recorded_run
from tests.ui.test_data_screen import FAKE
from tests.ui.test_pipeline_screen import write_plan
from tests.ui.test_playground import FakeServers
from tests.ui.test_rank import add_group, make_session
from workbench import project, telemetry
from workbench.data.importer import import_file
from workbench.plans.pipelines import RunnerFinished, RunnerStarted, StageEnded, StageStarted, parse_stage

DEMO = "demo-citations"
SFT, GRPO, DPO = "20261130-192616-sft", "20261201-101500-grpo", "20261202-083000-dpo"
PIPELINE = "20261203-090000-pipe-prep"
SESSION = "20261204-100000-sample"

# The estimate panel's numbers come from a child process; a fixed answer keeps the snapshot stable.
FIXED_ESTIMATE = """
import json
modes = [{"mode": m, "trainable": t, "total": 134_515_008, "memory": g * 1024 ** 3}
         for m, t, g in (("full", 134_515_008, 2.6), ("lora", 4_884_480, 1.4), ("qlora", 4_884_480, 0.9),
                         ("last_layer", 28_311_552, 1.1))]
print(json.dumps({"model": "SmolLM2-135M-Instruct", "device": "cpu", "precision": "fp32", "batch_size": 4,
                  "max_length": 512, "chosen": "lora", "free_bytes": 16 * 1024 ** 3, "where": "available RAM",
                  "modes": modes}))
"""
MACHINE = telemetry.Telemetry(cpu_percent=12.0, ram_used_gib=5.2, ram_total_gib=16.0,
                              gpu_error="no NVIDIA driver found")


@pytest.fixture
def world(home, chat_file, tmp_path, monkeypatch):
    """Two projects; the demo has data, three recorded runs (two of them a pipeline's stages) and a
    sampling session with groups to rank. Every clock, child process and server is a fixed stand-in."""
    from screens.data.screen import DataScreen
    from screens.widgets.mode_estimate import ModeEstimate

    monkeypatch.setattr(project, "now_iso", lambda: "2026-11-30T18:05:00+00:00")
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setattr(telemetry, "snapshot", lambda: MACHINE)
    estimate, data = tmp_path / "estimate.py", tmp_path / "fake_data.py"
    estimate.write_text(FIXED_ESTIMATE)
    data.write_text(FAKE)
    monkeypatch.setenv("FAKE_DATA_LOG", str(tmp_path / "calls.jsonl"))
    monkeypatch.setattr(ModeEstimate, "COMMAND", (sys.executable, str(estimate)))
    monkeypatch.setattr(ModeEstimate, "DELAY", 0.05)
    monkeypatch.setattr(DataScreen, "COMMAND", (sys.executable, str(data)))

    project.create(DEMO, description="Demo: turn a raw book citation into a JSON record.")
    import_file(DEMO, chat_file)
    project.create("support-bot")
    for method, run_id in (("sft", SFT), ("grpo", GRPO), ("dpo", DPO)):
        recorded_run(method, DEMO, run_id)
    plan = write_plan(DEMO, PIPELINE, [
        RunnerStarted(pid=1, time=1796066000.0),
        StageStarted(stage=0, run_id=SFT, time=1796066001.0),
        StageEnded(stage=0, run_id=SFT, state="completed", time=1796066100.0),
        StageStarted(stage=1, run_id=GRPO, time=1796066101.0),
        StageEnded(stage=1, run_id=GRPO, state="completed", time=1796066200.0),
        RunnerFinished(state="completed", time=1796066201.0)], pid=1,
        stages=[parse_stage("sft:max_steps=30@chat"), parse_stage("grpo:rewards=length:1,exact:0.5@chat")])
    (plan.path / "pid").unlink()
    session = make_session(DEMO, SESSION, alive=False)
    for index in range(3):
        add_group(session, index)

    servers = FakeServers(tmp_path / "servers")
    from screens import playground

    monkeypatch.setattr(playground, "Servers", servers.servers)
    real_figures = playground.figures
    monkeypatch.setattr(playground, "figures",
                        lambda done: real_figures({**done, "first_token_s": 0.12, "tokens_per_s": 31.4}))
    yield home
    servers.close()
    monkeypatch.delenv("TZ")
    time.tzset()


async def settle(pilot, seconds: float = 0.0) -> None:
    """Wait for the workers that finish (a monitor's or a ranking's watcher never does)."""
    await pilot.pause()
    finishing = [w for w in pilot.app.workers if not w.group.endswith(".watch")]
    if finishing:  # an empty list would wait for every worker
        await pilot.app.workers.wait_for_complete(finishing)
    await pilot.pause(seconds)


async def wait_until(pilot, condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def charts_drawn(pilot, timeout: float = 30.0) -> None:
    """The charts draw on their own clock: wait until each has drawn what it was last given."""
    from screens.widgets.metric_chart import MetricChart

    await pilot.pause()
    await wait_until(pilot, lambda: all(c.drawn and not c._dirty for c in pilot.app.screen.query(MetricChart)),
                     "the charts", timeout)
    await pilot.pause()


def mask(widget: Static, home) -> None:
    """A path under the test's temporary projects home, written as a person's would read."""
    widget.update(str(widget.render()).replace(str(home), "~/projects"))


async def open_project(pilot) -> None:
    await settle(pilot)
    await pilot.press("enter")
    await wait_until(pilot, lambda: getattr(pilot.app.screen, "info", None) is not None, "the project")
    await settle(pilot)


async def select_run(pilot, run_id: str) -> None:
    screen = pilot.app.screen
    table = screen.query_one("#runs", DataTable)
    table.focus()
    table.move_cursor(row=table.get_row_index(run_id))
    await pilot.pause()


# One opening per screen: the keys a person presses from the projects home.

async def projects_screen(pilot, home) -> None:
    await settle(pilot)
    pilot.app.screen.query_one("#home", Static).update("Projects live in ~/projects")


async def project_screen(pilot, home) -> None:
    await open_project(pilot)
    await select_run(pilot, DPO)
    mask(pilot.app.screen.query_one("#summary", Static), home)


async def method_screen(pilot, home) -> None:
    from screens.widgets.mode_estimate import ModeEstimate

    await open_project(pilot)
    await pilot.press("t")
    await settle(pilot)
    panel = pilot.app.screen.query_one(ModeEstimate)
    await wait_until(pilot, lambda: panel.report is not None, "the memory estimate")
    await settle(pilot)


async def data_screen(pilot, home) -> None:
    await open_project(pilot)
    await pilot.press("d")
    screen = pilot.app.screen
    await wait_until(pilot, lambda: screen.rendered is not None and "records in" in str(
        screen.query_one("#stats-status", Static).render()), "the record and the figures")
    await settle(pilot)


async def monitor_screen(pilot, home) -> None:
    await open_project(pilot)
    await select_run(pilot, SFT)
    await pilot.press("m")
    await wait_until(pilot, lambda: getattr(pilot.app.screen, "info", None) is not None
                     and pilot.app.screen.query_one("#gpu").snap is not None, "the run and the machine")
    await settle(pilot, 0.3)


async def rank_screen(pilot, home) -> None:
    from screens.rank.screen import RankScreen

    await settle(pilot)
    await pilot.app.push_screen(RankScreen(DEMO, SESSION))
    screen = pilot.app.screen
    await wait_until(pilot, lambda: screen.group is not None and screen.sampler is not None, "the first group")
    await settle(pilot, 0.2)


async def export_screen(pilot, home) -> None:
    await open_project(pilot)
    await select_run(pilot, DPO)
    await pilot.press("e")
    await settle(pilot)
    screen = pilot.app.screen
    screen.query_one("#gguf", RadioButton).value = True
    await settle(pilot)
    out = screen.query_one("#out", Input)
    out.value = out.value.replace(str(home), "~/projects")
    out.cursor_position = 0
    screen.query_one("#format").focus()
    await settle(pilot)


async def pipeline_screen(pilot, home) -> None:
    await open_project(pilot)
    await select_run(pilot, f"plan:{PIPELINE}")
    await pilot.press("enter")
    await wait_until(pilot, lambda: getattr(pilot.app.screen, "plan_id", None) == PIPELINE
                     and pilot.app.screen.info is not None, "the pipeline")
    await settle(pilot)


async def playground_screen(pilot, home) -> None:
    from screens.widgets.chat_pane import ChatPane

    await open_project(pilot)
    await pilot.press("p")
    screen = pilot.app.screen
    await wait_until(pilot, lambda: 0 in getattr(screen, "clients", {}), "the base model")
    screen.query_one("#right", ChatPane).query_one("Select").value = "run:r1"
    await wait_until(pilot, lambda: 1 in screen.clients, "the run's model")
    screen.query_one("#message", Input).value = "Turn this into JSON: Eco, Umberto. The Name of the Rose. 1980."
    screen.query_one("#message", Input).focus()
    screen.query_one("#message", Input).cursor_blink = False  # a blinking cursor is a different picture each time
    await pilot.press("enter")
    await wait_until(pilot, lambda: not screen.requests and all(
        m["role"] == "assistant" for m in (p.messages[-1:] for p in screen.panes) for m in m), "both answers")
    await settle(pilot, 0.2)


SCREENS = {"projects": projects_screen, "project": project_screen, "method": method_screen, "data": data_screen,
           "monitor": monitor_screen, "rank": rank_screen, "export": export_screen, "pipeline": pipeline_screen,
           "playground": playground_screen}
