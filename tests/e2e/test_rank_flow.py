"""Ranking end to end: a real sampler on the tiny model, the screen driven with Pilot, an app
killed mid-way, a judge, then reward and DPO runs on the pairs and a reward model scoring cards."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from textual.app import App
from textual.widgets import Input

from screens.app import WorkbenchApp
from screens.rank.judge import JudgeScreen
from screens.rank.screen import RankScreen
from screens.widgets.candidate_card import CandidateCard
from tests.e2e.conftest import REPO, cli, events, of_type
from workbench import locations
from workbench import project as projects
from workbench.jobs import launch, store
from workbench.ranking import candidates
from workbench.ranking import rankings as ranking
from workbench.registry.specs import make_spec
from workbench.run import events as ev

pytestmark = pytest.mark.e2e

SIZE = (120, 36)
PROMPTS = 6
SHORT = ["--wait", "--set", "max_steps=4", "--set", "batch_size=4", "--set", "eval_steps=0",
         "--set", "max_length=96", "--set", "save_steps=100"]

# Drives a ranking screen in its own process, prints each commit once the screen has moved
# on, then waits mid-ranking to be killed with SIGKILL: no cleanup of any kind runs.
DRIVER = textwrap.dedent("""
    import asyncio, sys, time
    from textual.app import App
    from screens.rank.screen import RankScreen

    project, session = sys.argv[1], sys.argv[2]

    class RankApp(App):
        def on_mount(self):
            self.push_screen(RankScreen(project, session))

    async def main():
        app = RankApp()
        async with app.run_test(size=(120, 36)) as pilot:
            screen = app.screen
            for keys in (["2", "1", "3"], ["4", "t"]):
                while screen.group is None or len(screen.query("CandidateCard")) < 4:
                    await pilot.pause(0.05)
                index = screen.group["index"]
                await pilot.press(*keys, "enter")
                while screen.group is not None and screen.group["index"] == index:
                    await pilot.pause(0.02)
                print("committed", index, flush=True)
            while screen.group is None:
                await pilot.pause(0.05)
            await pilot.press("3", "1")
            print("mid-ranking", screen.group["index"], flush=True)
            time.sleep(600)

    asyncio.run(main())
""")


class RankApp(App):
    def __init__(self, project: str, run_id: str) -> None:
        super().__init__()
        self.project, self.run_id = project, run_id

    def on_mount(self) -> None:
        self.push_screen(RankScreen(self.project, self.run_id))


async def until(pilot, condition, timeout: float = 120.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def showing(pilot, index: int | None = None, timeout: float = 120.0) -> RankScreen:
    screen = pilot.app.screen
    await until(pilot, lambda: isinstance(screen, RankScreen) and screen.group is not None
                and (index is None or screen.group["index"] == index)
                and len(screen.query(CandidateCard)) == len(screen.group["candidates"]),
                timeout, f"prompt {index} on screen")
    return screen


async def rank(pilot, keys: list[str]) -> dict:
    """Press `keys` then enter; the committed record, once the screen has moved on."""
    screen = pilot.app.screen
    index = screen.group["index"]
    await pilot.press(*keys, "enter")
    await until(pilot, lambda: screen.group is None or screen.group["index"] != index, 30, "the commit")
    return [r for r in ranking.read(screen.project) if r.get("index") == index and r["by"] == "person"
            and r["session"] == screen.run_id][-1]


def person_records(project: str, session: str) -> list[dict]:
    return [r for r in ranking.read(project) if r.get("session") == session and r["by"] == "person"]


async def start_session_from_the_setup(pilot) -> str:
    # The projects home lists its projects from a worker: enter opens one once its row is there.
    await until(pilot, lambda: any(t.row_count for t in pilot.app.screen.query("#projects")), 30, "the projects")
    await pilot.press("enter")
    await until(pilot, lambda: type(pilot.app.screen).__name__ == "ProjectScreen", 30, "the project")
    await pilot.press("k")
    await until(pilot, lambda: type(pilot.app.screen).__name__ == "RankSetupScreen", 30, "the setup")
    setup = pilot.app.screen
    setup.query_one("#param-prompts", Input).value = str(PROMPTS)
    setup.query_one("#param-max_new_tokens", Input).value = "12"
    await pilot.press("ctrl+s")
    await until(pilot, lambda: isinstance(pilot.app.screen, RankScreen), 60, "the ranking screen")
    return pilot.app.screen.run_id


@pytest.fixture
def ranked_project(tiny_project):
    """The tiny project; every worker still alive when the test ends is stopped, pass or fail."""
    yield tiny_project
    for info in store.list_runs(tiny_project):
        if info.alive:
            try:
                store.stop(tiny_project, info.id)
            except store.RunError:
                pass


async def test_rank_a_real_session_survive_a_kill_and_train_on_the_pairs(ranked_project):
    project = ranked_project

    # 1. A session started from the setup modal; the first prompt ranked in this process.
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        session = await start_session_from_the_setup(pilot)
        screen = await showing(pilot, 0)
        assert len(screen.group["candidates"]) == 4
        first = await rank(pilot, ["2", "4", "1", "3"])
        assert first["ranking"] == [1, 3, 0, 2] and first["round"] == 0
        assert first["candidates"] == screen.groups[0]["candidates"]
    assert store.get(project, session).alive  # the sampler outlives the app

    # 2. Another app process ranks two prompts and is killed while making the third ranking.
    child = subprocess.Popen([sys.executable, "-c", DRIVER, project, session], cwd=REPO, env=dict(os.environ),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    said = []
    try:
        for line in child.stdout:
            said.append(line.split())
            if line.startswith("mid-ranking"):
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    assert said == [["committed", "1"], ["committed", "2"], ["mid-ranking", "3"]], child.stderr.read()
    records = person_records(project, session)
    assert [(r["index"], r["ranking"], r["tied"]) for r in records] == [
        (0, [1, 3, 0, 2], []), (1, [1, 0, 2, 3], []), (2, [3], [0, 1, 2])]

    # 3. A new app goes on at prompt 3, and the session ends; the rankings become a dataset.
    async with RankApp(project, session).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 3)
        assert screen.ranking.picks == []  # the killed app's half-made ranking is gone, as it should be
        await rank(pilot, ["1", "2", "3"])
        await showing(pilot, 4)
        await pilot.press("r")  # fresh candidates from the live sampler
        await until(pilot, lambda: screen.group["round"] == 1 and not screen.resampling, 60, "the resample")
        await rank(pilot, ["4", "3", "2"])
        await showing(pilot, 5)
        await pilot.press("s")
        await until(pilot, lambda: "Session complete" in str(screen.query_one("#waiting").render()), 30,
                    "the summary")
        await pilot.press("d")
        await until(pilot, lambda: any(d.name == "rankings" for d in projects.load(project).datasets), 30,
                    "the rankings dataset")

        # 4. A judge ranks the same session, marked as such.
        await pilot.press("j")
        await until(pilot, lambda: isinstance(pilot.app.screen, JudgeScreen), 10, "the judge modal")
        judge_screen = pilot.app.screen
        await until(pilot, lambda: "{answer}" in judge_screen.query_one("#template").text, 10, "the template")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(pilot.app.screen, RankScreen), 60, "the judge started")

    records = person_records(project, session)
    assert [(r["index"], r["round"], r["skipped"]) for r in records] == [
        (0, 0, False), (1, 0, False), (2, 0, False), (3, 0, False), (4, 1, False), (5, 0, True)]
    entry = projects.load(project).dataset("rankings")  # one record a ranking that gives a pair; none skipped
    assert entry.kind == "ranked" and 1 <= entry.records <= 5

    judge_run = [r for r in store.list_runs(project) if r.method == "judge"][-1]
    info = store.wait(project, judge_run.id, timeout=300)
    assert info.state == "completed", info.message
    judged = [r for r in ranking.read(project) if r.get("session") == session and r["by"].startswith("judge:")]
    assert sorted(r["index"] for r in judged) == list(range(PROMPTS))
    assert store.wait(project, session, timeout=120).state == "completed"  # everything ranked: the sampler ends

    # 5. Reward model and DPO on the pairs, with the CLI, and their metrics from the events.
    refresh = cli("rankings", project, "--refresh")
    assert refresh.returncode == 0 and "rewritten" in refresh.stdout, refresh.stderr
    result = cli("train", project, "--method", "reward", "--dataset", "rankings", *SHORT)
    assert result.returncode == 0, result.stderr
    reward_run = result.stdout.splitlines()[0].strip()
    got = events(project, reward_run)
    assert of_type(got, ev.Finished)[-1].reason == "completed"
    assert all(math.isfinite(log.loss) for log in of_type(got, ev.Log))
    # the tiny random model's 12-token answers were all cut by the limit: DPO trains on them only when asked
    result = cli("train", project, "--method", "dpo", "--dataset", "rankings", "--set", "cut_answers=keep", *SHORT)
    assert result.returncode == 0, result.stderr
    logs = of_type(events(project, result.stdout.splitlines()[0].strip()), ev.Log)
    assert logs and all("rewards/margins" in log.metrics for log in logs)

    # 6. The reward model scores the cards of a new session, beside the person's ranking.
    spec = make_spec(project, "sample", {"prompts": "2", "max_new_tokens": "8"}, datasets=["chat"])
    launch.start(spec)
    async with RankApp(project, spec.id).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)
        await until(pilot, lambda: all(c.score is not None for c in screen.query(CandidateCard)), 180,
                    "reward scores on the cards")
        assert screen.reward_run == reward_run
        scores = [c.score for c in screen.query(CandidateCard)]
        record = await rank(pilot, ["1", "2", "3"])
        assert screen.tally.agreements == [ranking.agreement(record, scores)]
        assert "reward model agrees" in str(screen.query_one("#progress").render())
    store.stop(project, spec.id)
    assert candidates.total_prompts(locations.run_dir(project, spec.id)) == 2
