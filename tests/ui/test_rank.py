"""The ranking screen, driven with Pilot on sampling sessions whose files the test writes.

A session here is a run folder as the sampler leaves it (`job.toml`, `prompts.json`,
`candidates.jsonl`); its pid and heartbeat point at this test process when the test needs
a live sampler. The real sampler is exercised in tests/e2e/test_rank_flow.py.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from textual.app import App
from textual.widgets import Static

from screens.rank.screen import RankScreen
from screens.widgets.candidate_card import CandidateCard
from tests.unit.test_store import hold_here, release_held  # noqa: F401 - a fixture
from workbench import locations
from workbench import project as projects
from workbench.ranking import candidates
from workbench.ranking import rankings as ranking
from workbench.run.spec import DataSource, JobSpec

SIZE = (120, 36)
SESSION = "20250101-000000-sample"
PROMPTS = [f"Prompt number {i}: say something about {i}." for i in range(6)]


class RankApp(App):
    def __init__(self, project: str, run_id: str) -> None:
        super().__init__()
        self.project, self.run_id = project, run_id

    def on_mount(self) -> None:
        self.push_screen(RankScreen(self.project, self.run_id))


def make_session(project: str = "alpha", run_id: str = SESSION, prompts: list[str] = PROMPTS,
                 alive: bool = True, ab: bool = False) -> Path:
    """A sampling run folder with its prompts chosen and no group yet."""
    if not locations.project_dir(project).exists():
        projects.create(project)
    run_dir = locations.run_dir(project, run_id)
    (run_dir / "checkpoints").mkdir(parents=True)
    JobSpec(id=run_id, project=project, method="sample", base_model="tiny",
            params={"n": 4, "model_b": "run:b" if ab else ""},
            train=[DataSource(dataset="prompts", file="prompts.jsonl", kind="prompt")]).save(run_dir)
    candidates.write_prompts(run_dir, prompts, models=["base"], n=4, ab=ab)
    if alive:
        (run_dir / "pid").write_text(f"{os.getpid()}\n")
        (run_dir / "heartbeat").write_text(f"{time.time()}\n")
        hold_here(run_dir)
    return run_dir


def add_group(run_dir: Path, index: int, n: int = 4, round_: int = 0, prompt=None) -> dict:
    texts = [f"answer {index}.{k} (round {round_})" for k in range(n)]
    return candidates.write_group(run_dir, index, round_, PROMPTS[index] if prompt is None else prompt,
                                  [{"text": t, "source": "base"} for t in texts])


def add_ab_group(run_dir: Path, index: int, first: str, second: str) -> dict:
    return candidates.write_group(run_dir, index, 0, PROMPTS[index],
                                  [{"text": f"{first} says {index}", "source": first},
                                   {"text": f"{second} says {index}", "source": second}], ab=True)


async def wait_for(pilot, condition, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def shown(screen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def cards(screen) -> list[CandidateCard]:
    return list(screen.query(CandidateCard))


def committed(project: str = "alpha") -> list[dict]:
    return [r for r in ranking.read(project) if r.get("session") == SESSION]


async def showing(pilot, index: int) -> RankScreen:
    screen = pilot.app.screen
    await wait_for(pilot, lambda: screen.group is not None and screen.group["index"] == index
                   and len(cards(screen)) == len(screen.group["candidates"]), what=f"prompt {index} shown")
    # ...and laid out, with its progress line written (a loaded machine may take a few frames)
    await wait_for(pilot, lambda: str(screen.query_one("#progress", Static).render()).strip()
                   and all(card.region.height > 0 for card in cards(screen)), what=f"prompt {index} laid out")
    await pilot.pause()
    return screen


async def test_an_answer_the_token_limit_ended_says_so_on_its_card(home):
    from screens.widgets.candidate_card import CUT

    run_dir = make_session()
    candidates.write_group(run_dir, 0, 0, PROMPTS[0], [{"text": "A whole answer.", "source": "base"},
                                                         {"text": "An answer that went on and", "source": "base",
                                                          "cut": True}])
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)
        bodies = [str(card.query_one(Static).render()) for card in cards(screen)]
        assert bodies == ["A whole answer.", "An answer that went on and" + CUT]


async def test_number_keys_rank_in_order_and_enter_commits(home):
    run_dir = make_session()
    for i in range(3):
        add_group(run_dir, i)
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)
        assert PROMPTS[0] in shown(screen, "#prompt")
        assert [c.border_title.strip() for c in cards(screen)] == ["1", "2", "3", "4"]
        assert screen.query_one("#prompt-box").border_subtitle == "answers of base"
        await pilot.press("2", "4", "1", "3")
        assert [c.badge for c in cards(screen)] == ["#3", "#1", "#4", "#2"]
        await pilot.press("enter")
        screen = await showing(pilot, 1)
        [record] = committed()
        assert record["ranking"] == [1, 3, 0, 2] and record["tied"] == [] and not record["skipped"]
        assert (record["index"], record["round"], record["by"]) == (0, 0, "person")
        assert record["candidates"][1]["text"] == "answer 0.1 (round 0)"
        assert record["prompt"] == PROMPTS[0]
        assert "ranked 1" in shown(screen, "#progress") and "left 5" in shown(screen, "#progress")


async def test_backspace_undoes_and_the_last_card_needs_no_key(home):
    run_dir = make_session()
    add_group(run_dir, 0)
    add_group(run_dir, 1)
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)
        await pilot.press("3", "1", "backspace", "2", "2")  # the second 2 is already placed: ignored
        assert screen.ranking.picks == [2, 1]
        assert [c.badge for c in cards(screen)] == ["", "#2", "#1", ""]
        await pilot.press("4", "enter")  # card 1 is last by elimination
        await showing(pilot, 1)
        assert committed()[0]["ranking"] == [2, 1, 3, 0]


async def test_t_ties_the_rest(home):
    run_dir = make_session()
    add_group(run_dir, 0)
    add_group(run_dir, 1)
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)
        await pilot.press("3", "t")
        assert [c.badge for c in cards(screen)][2] == "#1"
        assert all(c.badge.startswith("=") for i, c in enumerate(cards(screen)) if i != 2)
        await pilot.press("backspace")  # the tie is taken back first
        assert screen.ranking.tied == [] and screen.ranking.picks == [2]
        await pilot.press("t", "enter")
        await showing(pilot, 1)
        record = committed()[0]
        assert record["ranking"] == [2] and record["tied"] == [0, 1, 3]
        assert ranking.to_pairs(record) == [(2, 0), (2, 1), (2, 3)]


async def test_enter_is_refused_until_every_card_is_placed(home):
    run_dir = make_session()
    add_group(run_dir, 0)
    add_group(run_dir, 1)
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)
        await pilot.press("1", "enter")
        await pilot.pause(0.3)
        assert committed() == [] and screen.group["index"] == 0
        hint = shown(screen, "#hint")
        assert "Not yet" in hint and "2, 3, 4" in hint and "t to tie" in hint
        await pilot.press("2", "enter")
        await pilot.pause(0.3)
        assert committed() == []  # two cards still undecided
        await pilot.press("3", "enter")
        await showing(pilot, 1)
        assert committed()[0]["ranking"] == [0, 1, 2, 3]


async def test_s_skips_and_the_skip_is_committed(home):
    run_dir = make_session()
    add_group(run_dir, 0)
    add_group(run_dir, 1)
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)
        await pilot.press("2", "s")  # a skip drops the picks made so far
        screen = await showing(pilot, 1)
        [record] = committed()
        assert record["skipped"] and record["index"] == 0
        assert ranking.to_pairs(record) == []
        assert "skipped 1" in shown(screen, "#progress") and "ranked 0" in shown(screen, "#progress")


async def test_clicking_a_card_picks_it(home):
    run_dir = make_session()
    add_group(run_dir, 0)
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)
        await pilot.click("#cards CandidateCard:last-child")
        await pilot.click("#cards CandidateCard:first-child")
        assert screen.ranking.picks == [3, 0]
        assert cards(screen)[3].badge == "#1"


async def test_r_asks_for_fresh_candidates_and_shows_the_new_round(home):
    run_dir = make_session()
    add_group(run_dir, 0)
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)
        await wait_for(pilot, lambda: screen.sampler is not None, what="the sampler's state")
        await pilot.press("1", "r")
        assert [r["index"] for r in candidates.JsonlTail(run_dir / candidates.REQUESTS).read_dicts()] == [0]
        assert candidates.pending_requests(run_dir) == [0]
        assert "resampling" in shown(screen, "#hint")
        await pilot.press("2")
        assert screen.ranking.picks == []  # no ranking of stale candidates
        add_group(run_dir, 0, round_=1)
        await wait_for(pilot, lambda: screen.group["round"] == 1 and not screen.resampling, what="round 1")
        assert "round 1" in str(cards(screen)[0].query_one(Static).render())
        await pilot.press("4", "3", "2", "enter")
        await wait_for(pilot, lambda: committed(), what="the commit")
        assert committed()[0]["round"] == 1 and committed()[0]["candidates"][0]["text"].endswith("(round 1)")


async def test_waiting_for_the_sampler_does_not_freeze_the_screen(home):
    run_dir = make_session()
    add_group(run_dir, 0)
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)
        await pilot.press("1", "2", "3", "enter")
        await wait_for(pilot, lambda: screen.group is None and screen.sampler is not None, what="waiting")
        await wait_for(pilot, lambda: "waiting for candidates (sampler at 1/6)" in shown(screen, "#waiting"),
                       what="the waiting line")
        assert not screen.query_one("#cards").display
        await pilot.press("1", "enter", "backspace")  # keys while waiting do nothing, and nothing breaks
        started = time.monotonic()
        await pilot.pause(0.2)
        assert time.monotonic() - started < 1.0
        add_group(run_dir, 1)
        await showing(pilot, 1)
        assert len(committed()) == 1


async def test_a_failed_sampler_says_so_while_waiting(home):
    run_dir = make_session(alive=False)
    from workbench.run import events as ev

    writer = ev.EventWriter(run_dir / "events.jsonl")
    writer.emit(ev.Started(pid=1, method="sample"))
    writer.emit(ev.Error(message="The model 'nowhere' does not exist.", kind="error"))
    writer.close()
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = pilot.app.screen
        await wait_for(pilot, lambda: "The sampler failed" in shown(screen, "#waiting"), what="the failure")
        assert "The model 'nowhere' does not exist." in shown(screen, "#waiting")


async def test_blind_ab_hides_the_models_until_the_summary(home):
    run_dir = make_session(prompts=PROMPTS[:3], ab=True)
    add_ab_group(run_dir, 0, "run-aaa", "base")
    add_ab_group(run_dir, 1, "base", "run-aaa")
    add_ab_group(run_dir, 2, "base", "run-aaa")
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)
        everything = " ".join([shown(screen, "#prompt"), shown(screen, "#progress"), shown(screen, "#hint")]
                              + [c.border_title + c.border_subtitle for c in cards(screen)])
        assert "run-aaa" not in everything and "base" not in everything
        assert [c.border_title.strip() for c in cards(screen)] == ["1", "2"]
        assert "blind A/B" in screen.query_one("#prompt-box").border_subtitle
        await pilot.press("1", "enter")  # run-aaa wins
        screen = await showing(pilot, 1)
        assert "A/B: 1 compared" in shown(screen, "#progress") and "run-aaa" not in shown(screen, "#progress")
        await pilot.press("2", "enter")  # run-aaa wins again
        await showing(pilot, 2)
        await pilot.press("t", "enter")  # a tie
        await wait_for(pilot, lambda: "Session complete" in shown(screen, "#waiting"), what="the summary")
        summary = shown(screen, "#waiting")
        assert "run-aaa wins 83% against base over 3 (2 won, 0 lost, 1 tied)" in summary
        records = committed()
        assert [r["ranking"] for r in records] == [[0, 1], [1, 0], []]
        assert records[2]["tied"] == [0, 1]


async def test_a_new_app_resumes_at_the_first_prompt_not_decided(home):
    run_dir = make_session()
    for i in range(4):
        add_group(run_dir, i)
    app = RankApp("alpha", SESSION)
    async with app.run_test(size=SIZE) as pilot:
        await showing(pilot, 0)
        await pilot.press("1", "2", "3", "enter")
        await showing(pilot, 1)
        await pilot.press("s")
        screen = await showing(pilot, 2)
        await pilot.press("4", "3")  # being made when the app goes away: lost, and only that
    assert [(r["index"], r["skipped"]) for r in committed()] == [(0, False), (1, True)]

    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 2)
        assert screen.ranking.picks == []
        progress = shown(screen, "#progress")
        assert "ranked 1" in progress and "skipped 1" in progress and "left 4" in progress
        await pilot.press("1", "2", "3", "enter")
        await showing(pilot, 3)
    assert [r["index"] for r in committed()] == [0, 1, 2]


async def test_prompt_as_messages_and_a_long_answer_scroll_in_its_card(home):
    run_dir = make_session()
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me a story."}]
    long_text = "\n".join(f"line {k} of a long story" for k in range(80))
    candidates.write_group(run_dir, 0, 0, messages, [{"text": long_text, "source": "base"},
                                                     {"text": "short", "source": "base"},
                                                     {"text": "", "source": "base"},
                                                     {"text": "also short", "source": "base"}])
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)
        prompt = shown(screen, "#prompt")
        assert "system: Be brief." in prompt and "user: Tell me a story." in prompt
        card = cards(screen)[0]
        assert card.max_scroll_y > 0  # the card holds the whole text and scrolls
        for card_ in cards(screen):  # four cards fit on 120x36, all on screen
            assert card_.region.height >= 8 and card_.region.width >= 50
            assert card_.region.bottom <= SIZE[1] - 2
        await pilot.press("tab", "tab")  # the prompt first (a long one scrolls too), then the first card
        assert screen.focused is cards(screen)[0]
        await pilot.press("pagedown")
        assert cards(screen)[0].scroll_y > 0
        await pilot.press("2")
        assert screen.ranking.picks == [1]  # numbers still pick while a card has focus
        assert "(empty answer)" in str(cards(screen)[2].query_one(Static).render())


# --- the setup modal (k on the project screen) and the judge modal (j) ------------------------------

async def open_setup(pilot):
    from screens.rank.sessions import RankSetupScreen

    await wait_for(pilot, lambda: pilot.app.screen.query("#projects"), what="the projects home")
    await pilot.app.workers.wait_for_complete()  # the projects are read in a thread
    await pilot.pause()
    await pilot.press("enter")
    await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "ProjectScreen", what="the project")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.press("k")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, RankSetupScreen), what="the setup modal")
    return pilot.app.screen


async def test_setup_lists_sessions_with_progress_and_enter_goes_on_with_one(home):
    from screens.app import WorkbenchApp

    run_dir = make_session()
    for i in range(3):
        add_group(run_dir, i)
    ranking.commit("alpha", ranking.make_record(PROMPTS[0], [{"text": "a"}, {"text": "b"}], [1, 0],
                                                session=SESSION, index=0, round=0))
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        setup = await open_setup(pilot)
        table = setup.query_one("#sessions")
        await wait_for(pilot, lambda: table.row_count == 1, what="the session row")
        assert [str(c) for c in table.get_row_at(0)][3:] == ["3/6", "1/6"]
        table.focus()
        await pilot.press("enter")
        screen = await showing(pilot, 1)  # prompt 0 was ranked before
        await pilot.press("escape")
        assert type(pilot.app.screen).__name__ == "ProjectScreen"


async def test_setup_refuses_what_cannot_start(home):
    from textual.widgets import Input, Select, TextArea

    from screens.app import WorkbenchApp

    projects.create("alpha")
    async with WorkbenchApp().run_test(size=SIZE) as pilot:
        setup = await open_setup(pilot)
        await wait_for(pilot, lambda: setup.query_one("#no-sessions").display, what="no sessions")
        assert setup.query_one("#dataset", Select).value == "__typed__"  # no dataset with prompts
        await pilot.press("ctrl+s")
        assert "Type at least one prompt" in shown(setup, "#status")
        setup.query_one("#typed", TextArea).text = "What is a haiku?\n\nWrite one about rain.\n"
        setup.query_one("#param-n", Input).value = "9"
        await pilot.press("ctrl+s")
        assert "Candidates" in shown(setup, "#status") and "8" in shown(setup, "#status")
        setup.query_one("#param-n", Input).value = "3"
        setup.query_one("#model-b", Select).value = "base"
        await pilot.press("ctrl+s")
        assert "two different models" in shown(setup, "#status")
        assert not list(locations.runs_dir("alpha").glob("*"))  # nothing was started


async def test_judge_modal_edits_the_template_and_refuses_one_without_placeholders(home):
    from textual.widgets import TextArea

    from screens.rank.judge import JudgeScreen
    from workbench.ranking.judge_params import DEFAULT_TEMPLATE, template_path

    run_dir = make_session()
    add_group(run_dir, 0)
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        await showing(pilot, 0)
        await pilot.press("j")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, JudgeScreen), what="the judge modal")
        judge = pilot.app.screen
        area = judge.query_one("#template", TextArea)
        await wait_for(pilot, lambda: area.text == DEFAULT_TEMPLATE, what="the default template")
        area.text = "Grade this: {prompt}"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "lacks {answer}" in shown(judge, "#status"), what="the refusal")
        assert template_path("alpha").read_text() == DEFAULT_TEMPLATE
        assert [p.name for p in locations.runs_dir("alpha").iterdir()] == [SESSION]  # no judge run
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, RankScreen)


async def test_reward_scores_show_on_cards_and_agreement_follows_commits(home):
    run_dir = make_session()
    add_group(run_dir, 0)
    add_group(run_dir, 1)
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)
        screen.post_message(RankScreen.ScorerNote("reward-run", True))  # what the scorer thread says
        screen.post_message(RankScreen.Scored(0, 0, [0.5, 2.0, -1.0, 1.0]))
        await wait_for(pilot, lambda: cards(screen)[1].score == 2.0, what="scores on the cards")
        assert "reward +2.00" in cards(screen)[1].border_subtitle
        await pilot.press("2", "4", "3", "enter")  # 2 > 4 > 3 > 1: the scores put 1 above 3, 5 of 6 pairs agree
        await showing(pilot, 1)
        assert screen.tally.agreements == [5 / 6]
        assert "reward model agrees 83% over 1" in shown(screen, "#progress")
        await pilot.press("1", "2", "3", "enter")  # committed before its scores come
        await wait_for(pilot, lambda: len(committed()) == 2, what="the second commit")
        screen.post_message(RankScreen.Scored(1, 0, [3.0, 2.0, 1.0, 0.0]))
        await wait_for(pilot, lambda: len(screen.tally.agreements) == 2, what="the late agreement")
        assert screen.tally.agreement == (5 / 6 + 1.0) / 2


# --- the rules of a ranking in progress, without a terminal ------------------------------------------

def test_ranking_rules():
    from screens.rank.state import Ranking

    r = Ranking(4)
    assert not r.complete and r.badge(0) == ""
    assert r.pick(1) and r.pick(3) and not r.pick(3) and not r.pick(4) and not r.pick(-1)
    assert r.remaining == [0, 2] and not r.complete
    assert r.tie_rest() and r.complete and r.final() == ([1, 3], [0, 2])
    assert r.badge(3) == "#2" and r.badge(0) == "= tied #3"
    assert r.undo() and r.tied == [] and r.picks == [1, 3]  # the tie goes first
    assert r.pick(2) and r.complete and r.final() == ([1, 3, 2, 0], [])  # the last card by elimination
    assert not r.tie_rest()  # one card left is not a tie
    assert r.undo() and r.undo() and r.undo() and not r.undo()
    ab = Ranking(2)
    assert ab.pick(1) and ab.complete and ab.final() == ([1, 0], [])
