"""Marking single answers good or bad on the ranking screen (+ and -), for KTO: which card a key marks, a
second press, undo, the card's marker, marks kept across visits, and the dataset `d` writes of them.
The sessions are run folders written by the test (tests/ui/test_rank.py's helpers)."""

from __future__ import annotations

import json

from textual.widgets import Static

from screens.rank.state import Ranking
from tests.ui.test_rank import PROMPTS, SESSION, SIZE, RankApp, add_group, cards, committed, make_session, showing, \
    shown, wait_for
from workbench import locations
from workbench import project as projects
from workbench.data.importer import read_records
from workbench.jobs.launch import LaunchError
from workbench.ranking import labels as marks
from workbench.registry.specs import make_spec


def standing(project: str = "alpha") -> dict[tuple[int, int, int], bool]:
    """(index, round, card) -> good, of the marks saved for the session."""
    return {k[1:]: m["label"] for k, m in marks.current(project, SESSION).items()}


def log_lines(project: str = "alpha") -> list[dict]:
    return [json.loads(line) for line in locations.answer_labels_file(project).read_text().splitlines()]


async def test_plus_and_minus_mark_the_focused_card_and_the_same_key_again_takes_the_mark_off(home):
    run_dir = make_session()
    add_group(run_dir, 0)
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)
        await pilot.press("tab", "tab", "tab")  # the prompt, the first card, the second card
        assert screen.focused is cards(screen)[1]
        await pilot.press("plus")
        assert cards(screen)[1].badge == "▲ good" and "▲ good" in cards(screen)[1].border_subtitle
        assert standing() == {(0, 0, 1): True}
        await pilot.press("minus")  # the other mark replaces it
        assert cards(screen)[1].badge == "▼ bad" and standing() == {(0, 0, 1): False}
        await pilot.press("minus")  # the same mark again: none
        assert cards(screen)[1].badge == "" and standing() == {}
        assert [line["label"] for line in log_lines()] == [True, False, None]
        line = log_lines()[0]
        assert (line["prompt"], line["completion"], line["session"], line["index"], line["round"],
                line["candidate"], line["source"]) == (PROMPTS[0], "answer 0.1 (round 0)", SESSION, 0, 0, 1, "base")
        assert [c.badge for i, c in enumerate(cards(screen)) if i != 1] == ["", "", ""]
        assert screen.ranking.picks == []  # a mark is no pick


async def test_with_no_card_focused_the_next_number_says_which_card_is_marked(home):
    run_dir = make_session()
    add_group(run_dir, 0)
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)
        await pilot.press("plus")
        assert "mark which answer good (+)? press its number (1-4)" in shown(screen, "#hint")
        await pilot.press("3")
        assert standing() == {(0, 0, 2): True} and screen.ranking.picks == []
        await pilot.press("3")  # numbers pick again
        assert screen.ranking.picks == [2] and cards(screen)[2].badge == "#1  ·  ▲ good"
        assert cards(screen)[2].has_class("-ranked")
        await pilot.press("minus", "escape")  # escape lets go of the mark, and stays on the screen
        assert screen.marking is None and pilot.app.screen is screen and "press its number" not in shown(
            screen, "#hint")
        await pilot.press("minus", "minus")  # so does the same key again
        assert screen.marking is None
        await pilot.press("minus", "plus", "4")  # the other key changes what the number will mark
        assert standing() == {(0, 0, 2): True, (0, 0, 3): True}
        await pilot.click("#cards CandidateCard:first-child")  # a click is a number too
        assert screen.ranking.picks == [2, 0]
        await pilot.press("minus")
        await pilot.click("#cards CandidateCard:first-child")
        assert standing()[(0, 0, 0)] is False and screen.ranking.picks == [2, 0]


async def test_backspace_takes_back_marks_and_picks_in_the_order_they_were_made(home):
    run_dir = make_session()
    add_group(run_dir, 0)
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)
        await pilot.press("2", "plus", "1", "minus", "1", "1")  # pick 2, mark 1 good, then bad, pick 1
        assert screen.ranking.picks == [1, 0] and standing() == {(0, 0, 0): False}
        await pilot.press("backspace")  # the pick of card 1
        assert screen.ranking.picks == [1] and standing() == {(0, 0, 0): False}
        await pilot.press("backspace")  # bad -> good again, saved
        assert standing() == {(0, 0, 0): True} and cards(screen)[0].badge == "▲ good"
        await pilot.press("backspace")  # good -> no mark
        assert standing() == {} and cards(screen)[0].badge == ""
        await pilot.press("plus", "backspace")  # a + waiting for its card is what backspace takes back
        assert screen.marking is None and screen.ranking.picks == [1]
        await pilot.press("backspace")
        assert screen.ranking.picks == [] and not screen.ranking.history
        assert [line["label"] for line in log_lines()] == [True, False, True, None]


async def test_marks_stay_with_their_answers_when_the_app_comes_back_and_a_commit_keeps_them(home):
    run_dir = make_session()
    for i in range(3):
        add_group(run_dir, i)
    add_group(run_dir, 3)
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        await showing(pilot, 0)
        await pilot.press("minus", "2", "plus", "4")  # marked, not ranked, when the app goes away
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)
        assert [c.badge for c in cards(screen)] == ["", "▼ bad", "", "▲ good"]
        await pilot.press("backspace")  # an earlier visit's marks are no decision of this one to take back
        assert standing() == {(0, 0, 1): False, (0, 0, 3): True}
        await pilot.press("1", "2", "3", "enter")
        screen = await showing(pilot, 1)
        assert [c.badge for c in cards(screen)] == ["", "", "", ""]  # the next prompt's answers are unmarked
        await pilot.press("s")
        await showing(pilot, 2)
    assert committed()[0]["ranking"] == [0, 1, 2, 3]
    assert standing() == {(0, 0, 1): False, (0, 0, 3): True}


async def test_an_empty_answer_cannot_be_marked(home):
    from workbench.ranking import candidates

    run_dir = make_session()
    candidates.write_group(run_dir, 0, 0, PROMPTS[0], [{"text": "something", "source": "base"},
                                                       {"text": "  ", "source": "base"}])
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)
        await pilot.press("minus", "2")
        assert "An empty answer cannot be marked" in shown(screen, "#hint")
        assert standing() == {} and cards(screen)[1].badge == ""


async def test_d_writes_the_marks_as_the_unpaired_label_dataset_kto_trains_on(home):
    run_dir = make_session()
    add_group(run_dir, 0)
    add_group(run_dir, 1)
    async with RankApp("alpha", SESSION).run_test(size=SIZE) as pilot:
        screen = await showing(pilot, 0)
        await pilot.press("d")  # nothing yet: the notice says why, and no dataset is made
        await wait_for(pilot, lambda: any("No answer is marked" in str(n.message)
                                          for n in pilot.app._notifications), what="the refusal")
        assert projects.load("alpha").datasets == []
        await pilot.press("plus", "1", "minus", "2", "1", "2", "3", "enter")
        screen = await showing(pilot, 1)
        await pilot.press("plus", "4", "plus", "4", "minus", "3")  # a mark made and taken off, another kept
        await pilot.press("d")
        await wait_for(pilot, lambda: projects.load("alpha").datasets and any(
            d.name == marks.DATASET for d in projects.load("alpha").datasets), what="the dataset")
        await wait_for(pilot, lambda: any("KTO runs can train on it" in str(n.message)
                                          for n in pilot.app._notifications), what="the notice")
        notice = next(str(n.message) for n in pilot.app._notifications if "KTO" in str(n.message))
        assert "'rankings' now holds 6 preference pair(s)" in notice
        assert "'rankings-labels' now holds 1 answer(s) marked good and 2 bad" in notice
        assert isinstance(screen.ranking, Ranking)
    project = projects.load("alpha")
    entry = project.dataset(marks.DATASET)
    assert (entry.kind, entry.records) == ("unpaired_label", 3)
    rows = read_records(project.path / entry.file)
    assert [(r["completion"], r["label"]) for r in rows] == [
        ("answer 0.0 (round 0)", True), ("answer 0.1 (round 0)", False), ("answer 1.2 (round 0)", False)]
    assert rows[0]["prompt"] == [{"role": "user", "content": PROMPTS[0]}]
    spec = make_spec("alpha", "kto", datasets=[marks.DATASET])  # what the method form checks before a run
    assert [s.kind for s in spec.train] == ["unpaired_label"]
    try:
        make_spec("alpha", "dpo", datasets=[marks.DATASET])
    except LaunchError as exc:
        assert "holds unpaired_label records" in str(exc)
    else:
        raise AssertionError("DPO took single marked answers")


def test_mark_rules():
    r = Ranking(3, labels={2: False})  # a mark from an earlier visit
    assert r.mark(2) == "▼ bad" and r.mark(0) == ""
    assert r.label(0, True) is True and r.mark(0) == "▲ good"
    assert r.pick(1) and r.label(0, False) is False and r.label(0, False) is None and r.mark(0) == ""
    assert r.undo() == ("label", 0, False) and r.labels == {0: False, 2: False}
    assert r.undo() == ("label", 0, True) and r.labels == {0: True, 2: False}
    assert r.undo() == ("pick", 1) and r.picks == []
    assert r.undo() == ("label", 0, None) and r.labels == {2: False}
    assert r.undo() is None and r.labels == {2: False}  # the earlier visit's mark stays


def test_the_marks_log_keeps_the_latest_mark_of_each_answer_and_skips_what_is_no_mark(home):
    projects.create("alpha")
    for label, candidate in ((True, 0), (False, 1), (None, 0), (True, 1)):
        marks.commit("alpha", marks.make_mark("p", f"answer {candidate}", label, SESSION, 0, 0, candidate))
    marks.commit("alpha", marks.make_mark("p", "other", True, "another-session", 0, 0, 0))
    path = locations.answer_labels_file("alpha")
    with open(path, "a") as f:
        f.write('{"label": "yes"}\nnot json\n{"prompt": "p", "completion": "half a li')
    assert standing() == {(0, 0, 1): True}
    assert len(marks.current("alpha")) == 2
    assert marks.labels_as_dataset("alpha") == (2, 0)
    marks.commit("alpha", marks.make_mark("p", "answer 0", False, SESSION, 0, 0, 0))  # after the half line
    assert standing() == {(0, 0, 1): True, (0, 0, 0): False}
    for bad in (("", True), ("x", "yes")):
        try:
            marks.make_mark("p", bad[0], bad[1], SESSION, 0, 0, 0)
        except marks.RankingError:
            continue
        raise AssertionError(f"{bad} was taken as a mark")
