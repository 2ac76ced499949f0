"""A ranking session ordered by the disagreement of two reward runs: the screen and the setup form."""

from __future__ import annotations

from textual.widgets import Select

from tests.ui.test_rank import SESSION, SIZE, RankApp, cards, open_setup, showing, shown, wait_for
from tests.ui.test_rank_order import order_session, title
from tests.unit.test_rank_disagree import reward_run
from tests.unit.test_store import hold_here, release_held  # noqa: F401 - a fixture
from workbench import project as projects
from workbench.run.spec import JobSpec


async def test_the_prompt_the_reward_runs_disagree_on_most_comes_next_and_the_box_says_why(home):
    run_dir = order_session("disagree")
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)
        assert title(screen) == "prompt · in session order: no group is scored by both runs yet"
        screen.post_message(screen.ScorerNote("reward-a", True))
        # group 1: the runs order 2 of its 6 pairs oppositely; group 2: 4 of 6; group 0: none
        screen.post_message(screen.Scored(0, 0, [4.0, 3.0, 2.0, 1.0], [4.0, 3.0, 2.0, 1.0]))
        screen.post_message(screen.Scored(1, 0, [4.0, 3.0, 2.0, 1.0], [3.0, 4.0, 1.0, 2.0]))
        screen.post_message(screen.Scored(2, 0, [4.0, 3.0, 2.0, 1.0], [1.0, 3.0, 4.0, 2.0]))
        await wait_for(pilot, lambda: screen.group["index"] == 2, what="the most disputed prompt")
        await showing(pilot, 2)
        assert title(screen) == "prompt · the reward runs disagree on 67% of its pairs"
        assert [card.score for card in cards(screen)] == [4.0, 3.0, 2.0, 1.0]  # the first run's scores
        await pilot.press("1", "2", "3", "enter")
        screen = await showing(pilot, 1)
        assert title(screen) == "prompt · the reward runs disagree on 33% of its pairs"
        await pilot.press("s")
        screen = await showing(pilot, 0)
        assert title(screen) == "prompt · the reward runs disagree on 0% of its pairs"
    assert JobSpec.load(run_dir).params["order"] == "disagree"


async def test_a_disagree_session_whose_runs_are_gone_ranks_in_its_own_order_and_says_why(home):
    run_dir = order_session("disagree")
    spec = JobSpec.load(run_dir)
    spec.params["reward_runs"] = "gone-1,gone-2"
    spec.save(run_dir)
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)
        await wait_for(pilot, lambda: "unavailable" in shown(screen, "#progress"), what="the scorer's refusal")
        assert "reward model gone-1,gone-2 unavailable" in shown(screen, "#progress")
        assert title(screen) == "prompt · in session order: no group is scored by both runs yet"


async def test_the_form_offers_disagreement_with_two_reward_runs_and_says_why_not_otherwise(home):
    from screens.app import WorkbenchApp

    projects.create("alpha")
    reward_run("alpha", "20250101-000000-reward")
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        setup = await open_setup(pilot)
        order = setup.query_one("#order", Select)
        assert [value for _, value in order._options if value != Select.BLANK] == ["session", "uncertain"]
        assert shown(setup, "#order-note") == ("Disagreement first needs two completed reward runs with a model "
                                               "(this project has only 20250101-000000-reward).")
        await pilot.press("escape")

    reward_run("alpha", "20250102-000000-reward")
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        setup = await open_setup(pilot)
        order = setup.query_one("#order", Select)
        assert not setup.query_one("#order-note").display
        order.value = "disagree"
        await pilot.pause()
        assert shown(setup, "#order-note") == ("Compares the newest two reward runs: 20250102-000000-reward and "
                                               "20250101-000000-reward.")
        setup.query_one("#typed").text = "What is a haiku?"
        values, typed, problem = setup.read_form()
        assert problem == "" and typed == ["What is a haiku?"]
        assert values["reward_runs"] == "20250102-000000-reward,20250101-000000-reward"
        assert values["order"] == "disagree" and values["ahead"] == "32"
        if __import__("os").environ.get("WB_SHOT"):
            pilot.app.save_screenshot("/tmp/wb12/setup.svg")
