"""Rankings: the pairs an order implies, the append-only log, A/B win rates, pairs for training."""

from __future__ import annotations

import json
import math

import pytest

from workbench import locations
from workbench import project as projects
from workbench.ranking import rankings as ranking

CANDIDATES = [{"text": t, "source": s} for t, s in (("a", "m1"), ("b", "m2"), ("c", "m1"), ("d", "m2"))]


def record(order, tied=(), skipped=False, candidates=CANDIDATES):
    return ranking.make_record("Q?", candidates, list(order), list(tied), skipped)


def test_a_full_ranking_gives_every_pair_in_its_order():
    # candidates ranked 2, 4, 1, 3 (1-based): indices 1, 3, 0, 2
    pairs = ranking.to_pairs(record([1, 3, 0, 2]))
    assert sorted(pairs) == sorted([(1, 3), (1, 0), (1, 2), (3, 0), (3, 2), (0, 2)])


def test_a_partial_ranking_beats_the_tied_rest_and_ties_give_no_pair():
    assert sorted(ranking.to_pairs(record([2], tied=[0, 1, 3]))) == [(2, 0), (2, 1), (2, 3)]
    assert sorted(ranking.to_pairs(record([3, 0], tied=[1, 2]))) == [(0, 1), (0, 2), (3, 0), (3, 1), (3, 2)]
    assert ranking.to_pairs(record([], tied=[0, 1, 2, 3])) == []


def test_a_skipped_ranking_gives_no_pair():
    assert ranking.to_pairs(record([0, 1, 2, 3], skipped=True)) == []


def test_a_stored_ranked_record_keeps_its_ties_apart():
    stored = {"prompt": "Q?", "completions": list("abcd"), "ranking": [2, 0, 1, 3], "ties": [[0, 1]]}
    assert sorted(ranking.ranked_pairs(stored)) == [(0, 3), (1, 3), (2, 0), (2, 1), (2, 3)]


def test_a_bad_ranking_is_refused():
    with pytest.raises(ranking.RankingError, match="each at most once"):
        record([0, 0])
    with pytest.raises(ranking.RankingError, match="each at most once"):
        record([0], tied=[0, 7])


def test_commits_survive_a_half_written_last_line(home):
    projects.create("p")
    first = ranking.commit("p", record([0, 1]))
    path = locations.rankings_file("p")
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"id": "half", "prompt": "cut of')  # the process died in the middle of a write
    assert [r["id"] for r in ranking.read("p")] == [first["id"]]
    second = ranking.commit("p", record([1, 0]))
    assert [r["id"] for r in ranking.read("p")] == [first["id"], second["id"]]
    assert json.loads(path.read_text().splitlines()[-1])["ranking"] == [1, 0]


def test_ab_win_rates_per_model_pair():
    def ab(winner_source, first="m1", second="m2", tie=False, skipped=False):
        cands = [{"text": "x", "source": first}, {"text": "y", "source": second}]
        order = [] if tie else [0 if winner_source == first else 1]
        tied = [0, 1] if tie else [1 - order[0]]
        return ranking.make_record("Q?", cands, order, tied, skipped)

    records = [ab("m1"), ab("m1", "m2", "m1"), ab("m2"), ab("", tie=True), ab("m1", skipped=True),
               ab("m3", "m3", "m1")]
    rates = ranking.ab_win_rates(records)
    m1_m2 = rates[("m1", "m2")]
    assert (m1_m2.wins, m1_m2.losses, m1_m2.ties, m1_m2.games) == (2, 1, 1, 4)
    assert math.isclose(m1_m2.rate, 2.5 / 4)
    assert (rates[("m1", "m3")].wins, rates[("m1", "m3")].losses) == (0, 1)


def test_rankings_become_a_ranked_dataset_one_record_per_prompt(home):
    projects.create("p")
    ranking.commit("p", record([1, 3, 0, 2]))
    ranking.commit("p", record([0], tied=[1, 2, 3]))
    ranking.commit("p", record([0, 1], skipped=True))
    ranking.commit("p", record([], tied=[0, 1, 2, 3]))  # all tied: no pair
    assert ranking.rankings_as_dataset("p") == 6 + 3
    ranking.commit("p", record([2, 3]))  # the rest left unranked: one pair
    ranking.commit("p", record([2]))  # a single candidate placed: nothing
    assert ranking.rankings_as_dataset("p") == 6 + 3 + 1  # refreshed, not appended twice
    project = projects.load("p")
    entry = project.dataset("rankings")
    assert (entry.kind, entry.split, entry.records) == ("ranked", "train", 3)
    assert [d.name for d in project.datasets].count("rankings") == 1
    rows = [json.loads(line) for line in project.dataset_path("rankings").read_text().splitlines()]
    user = [{"role": "user", "content": "Q?"}]
    assert {k: rows[0][k] for k in ("prompt", "completions", "ranking")} == \
        {"prompt": user, "completions": ["b", "d", "a", "c"], "ranking": [0, 1, 2, 3]}
    assert "ties" not in rows[0] and rows[0]["by"] == "person"
    assert (rows[1]["completions"], rows[1]["ranking"], rows[1]["ties"]) == (list("abcd"), [0, 1, 2, 3], [[1, 2, 3]])
    assert (rows[2]["completions"], rows[2]["ranking"]) == (["c", "d"], [0, 1])


def test_the_ranked_dataset_reads_back_as_the_pairs_of_the_rankings(home):
    from workbench.data import kinds
    from workbench.methods.kit.pair_data import record_pairs

    projects.create("p")
    candidates = [{"text": t, "source": "m"} for t in ("good", "", "fine", "bad")]
    ranking.commit("p", ranking.make_record("Q?", candidates, [0, 1], tied=[2, 3], by="judge:tiny",
                                            session="s1", index=4, round=1))
    assert ranking.rankings_as_dataset("p") == 2  # the empty answer is left out: good > fine, good > bad
    line = json.loads(projects.load("p").dataset_path("rankings").read_text())
    assert (line["by"], line["session"], line["index"]) == ("judge:tiny", "s1", 4)
    stored = kinds.normalise(line, kinds.detect(line))
    pairs = {(p["chosen"][0]["content"] if isinstance(p["chosen"], list) else p["chosen"], p["rejected"])
             for p in record_pairs(stored).rows}
    assert pairs == {("good", "fine"), ("good", "bad")}


def test_a_held_out_split_keeps_the_pairs_of_a_prompt_together(home):
    from workbench.methods.kit.pair_data import pair_datasets
    from workbench.run.spec import DataSource

    projects.create("p")
    for i in range(20):
        cands = [{"text": f"answer {i}.{k}", "source": "m"} for k in range(4)]
        ranking.commit("p", ranking.make_record(f"Q{i}?", cands, [0, 1, 2, 3]))
    ranking.rankings_as_dataset("p")
    project = projects.load("p")
    source = DataSource("rankings", str(project.dataset_path("rankings")), "ranked")
    train, held, cut = pair_datasets([source], [], 0.1, seed=3)
    assert (len(train), len(held), cut) == (18 * 6, 2 * 6, 0)
    prompts = lambda ds: {row["prompt"][0]["content"] for row in ds}  # noqa: E731
    assert not prompts(train) & prompts(held)


def test_done_indices_name_the_ranked_and_skipped_prompts_of_a_session(home):
    projects.create("p")
    ranking.commit("p", ranking.make_record("Q?", CANDIDATES, [0, 1], session="s1", index=0, round=0))
    ranking.commit("p", ranking.make_record("Q?", CANDIDATES, [], skipped=True, session="s1", index=3, round=2))
    ranking.commit("p", ranking.make_record("Q?", CANDIDATES, [1], by="judge:m", session="s1", index=5))
    ranking.commit("p", ranking.make_record("Q?", CANDIDATES, [1, 0], session="s2", index=1))
    ranking.commit("p", record([0, 1]))  # not from a session
    assert ranking.done_indices("p", "s1") == {0, 3, 5}
    assert ranking.done_indices("p", "s1", by="person") == {0, 3}
    assert ranking.done_indices("p", "s2") == {1}
    assert ranking.done_indices("p", "none") == set()


def test_a_record_says_where_its_candidates_came_from():
    made = ranking.make_record("Q?", CANDIDATES, [0], session="s1", index=2, round=1)
    assert (made["session"], made["index"], made["round"]) == ("s1", 2, 1)
    plain = record([0])
    assert (plain["session"], plain["index"], plain["round"]) == ("", None, None)
    with pytest.raises(ranking.RankingError, match="'index'"):
        ranking.make_record("Q?", CANDIDATES, [0], index=-1)


def test_agreement_is_the_share_of_implied_pairs_the_scores_order_the_same_way():
    # ranking 1 > 3 > 0 > 2: pairs (1,3) (1,0) (1,2) (3,0) (3,2) (0,2)
    scores = [0.5, 2.0, 0.1, 0.4]  # agrees on (1,3) (1,0) (1,2) (0,2) and (3,2); not on (3,0)
    assert ranking.agreement(record([1, 3, 0, 2]), scores) == pytest.approx(5 / 6)
    assert ranking.agreement(record([1, 3, 0, 2]), [4, 3, 2, 1]) == pytest.approx(3 / 6)  # (1,3) (1,2) (0,2)
    # ranking 2 then the tied rest: pairs (2,0) (2,1) (2,3); an equal score is not agreement
    assert ranking.agreement(record([2], tied=[0, 1, 3]), [1.0, 3.0, 1.0, 0.0]) == pytest.approx(1 / 3)
    assert ranking.agreement(record([0, 1], skipped=True), [1, 0, 0, 0]) is None
    assert ranking.agreement(record([], tied=[0, 1, 2, 3]), [1, 2, 3, 4]) is None


def test_rankings_refresh_also_writes_the_marked_answers(home, capsys):
    """`workbench rankings --refresh` rewrites 'rankings-labels' from the answers marked good or bad (+/-)."""
    from workbench import project as projects
    from workbench.cli.main import main
    from workbench.ranking import labels

    projects.create("marked")
    assert main(["rankings", "marked", "--refresh"]) == 1  # no pair and no mark: said, nothing written
    assert "No committed ranking gives a preference pair yet." in capsys.readouterr().err
    prompt = [{"role": "user", "content": "Name a colour."}]
    for candidate, (answer, good) in enumerate([("Blue.", True), ("Seven.", False), ("Red.", True)]):
        labels.commit("marked", labels.make_mark(prompt, answer, good, "s1", 0, 0, candidate))
    labels.commit("marked", labels.make_mark(prompt, "Red.", None, "s1", 0, 0, 2))  # taken off again
    capsys.readouterr()
    assert main(["rankings", "marked", "--refresh"]) == 0
    assert "Dataset 'rankings-labels' rewritten: 1 answers marked good, 1 bad." in capsys.readouterr().out
    entry = projects.load("marked").dataset("rankings-labels")
    assert entry.kind == "unpaired_label" and entry.records == 2
