"""Rankings: the pairs an order implies, the append-only log, A/B win rates, pairs for training."""

from __future__ import annotations

import json
import math

import pytest

from workbench import locations, ranking
from workbench import project as projects

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


def test_rankings_become_a_preference_dataset(home):
    projects.create("p")
    ranking.commit("p", record([1, 3, 0, 2]))
    ranking.commit("p", record([0], tied=[1, 2, 3]))
    ranking.commit("p", record([0, 1], skipped=True))
    assert ranking.rankings_as_dataset("p") == 6 + 3
    ranking.commit("p", record([2, 3]))  # the rest left unranked: one pair
    assert ranking.rankings_as_dataset("p") == 6 + 3 + 1  # refreshed, not appended twice
    project = projects.load("p")
    entry = project.dataset("rankings")
    assert (entry.kind, entry.split, entry.records) == ("preference", "train", 10)
    rows = [json.loads(line) for line in project.dataset_path("rankings").read_text().splitlines()]
    assert rows[0] == {"prompt": "Q?", "chosen": "b", "rejected": "d"}
    assert [d.name for d in project.datasets].count("rankings") == 1
