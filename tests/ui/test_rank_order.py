"""The ranking screen of a session ordered by uncertainty: the least sure prompt first, and why."""

from __future__ import annotations

from tests.ui.test_rank import SESSION, SIZE, RankApp, add_group, cards, make_session, showing, wait_for
from tests.unit.test_store import hold_here, release_held  # noqa: F401 - a fixture
from workbench.run.spec import JobSpec


def order_session(order: str):
    run_dir = make_session()
    spec = JobSpec.load(run_dir)
    spec.params["order"] = order
    spec.save(run_dir)
    for index in range(3):
        add_group(run_dir, index)
    return run_dir


def title(screen) -> str:
    return str(screen.query_one("#prompt-box").border_title)


async def test_the_least_sure_prompt_comes_next_and_the_box_says_why(home):
    order_session("uncertain")
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)  # nothing scored yet: the session's order
        assert title(screen) == "prompt · in session order: no group is scored yet"
        screen.post_message(screen.ScorerNote("reward-run", True))
        screen.post_message(screen.Scored(0, 0, [2.0, 0.0, -1.0, 0.5]))
        screen.post_message(screen.Scored(2, 0, [1.0, 0.9, 0.0, -3.0]))
        await wait_for(pilot, lambda: screen.group["index"] == 2, what="the least sure prompt")
        await showing(pilot, 2)
        assert title(screen) == ("prompt · least sure: its top two answers differ by 0.100, the smallest of 2 scored"
                                 " (1 more being scored)")
        await pilot.press("1", "2", "3", "enter")
        screen = await showing(pilot, 0)  # prompt 1 has no scores: the scored one goes first
        assert title(screen).startswith("prompt · least sure: its top two answers differ by 1.500")
        assert cards(screen)[0].score == 2.0


async def test_a_session_in_its_own_order_keeps_it_whatever_the_scores(home):
    order_session("session")
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)
        screen.post_message(screen.ScorerNote("reward-run", True))
        screen.post_message(screen.Scored(2, 0, [1.0, 1.0, 0.0, 0.0]))
        await pilot.press("1", "2", "3", "enter")
        screen = await showing(pilot, 1)
        assert title(screen) == "prompt"


async def test_a_pick_made_before_every_score_changes_until_the_person_touches_the_cards(home):
    order_session("uncertain")
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)
        screen.post_message(screen.ScorerNote("reward-run", True))
        screen.post_message(screen.Scored(1, 0, [2.0, 0.0, -1.0, 0.5]))
        await wait_for(pilot, lambda: screen.group["index"] == 1 and "2 more" in title(screen), what="a first pick")
        screen.post_message(screen.Scored(2, 0, [1.0, 0.9, 0.0, -3.0]))  # a smaller gap, moments later
        await wait_for(pilot, lambda: screen.group["index"] == 2, what="the better pick")
        await pilot.press("1")  # the person starts ranking: the cards stay, whatever comes
        screen.post_message(screen.Scored(0, 0, [1.0, 1.0, 0.0, 0.0]))
        await wait_for(pilot, lambda: (0, 0) in screen.scores, what="the scores read")
        await pilot.pause(0.3)
        assert screen.group["index"] == 2 and screen.ranking.picks == [0]  # group 0's gap (0) was smaller
