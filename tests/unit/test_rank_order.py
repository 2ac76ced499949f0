"""Active ranking: which prompt comes next, and why (workbench.ranking.order)."""

from __future__ import annotations

import pytest

from workbench.ranking.order import choose, discord, gap


def test_gap_and_discord_follow_their_definitions():
    assert gap([0.1, 0.9, 0.85, -2.0]) == pytest.approx(0.05)
    assert gap([3.0]) == float("inf")
    assert discord([1, 2, 3], [1, 2, 3]) == 0
    assert discord([1, 2, 3], [3, 2, 1]) == 1
    assert discord([1, 2, 3, 4], [2, 1, 3, 4]) == pytest.approx(1 / 6)


def test_uncertain_picks_the_smallest_gap_among_scored_groups_and_says_so():
    # A small synthetic session: the hidden rule counts the letter 'a'; the reward model nearly knows it.
    texts = {0: ["aaaa", "b", "bb", "a"], 1: ["aa", "aab", "b", "bbb"], 2: ["aaa", "b", "bab", "abba"], 3: ["a", "b"]}
    model = {i: [t.count("a") + 0.01 * len(t) for t in group] for i, group in texts.items() if i != 3}
    pick = choose([0, 1, 2, 3], "uncertain", model)
    assert pick.index == 1  # 'aa' vs 'aab': the top two differ by 0.01, the others by a whole 'a' or more
    assert pick.value == pytest.approx(0.01)
    assert pick.why == "least sure: its top two answers differ by 0.010, the smallest of 3 scored (1 more being scored)"
    assert not pick.settled  # group 3 has no scores yet: the pick may change when they come
    assert choose([0, 1, 2], "uncertain", model).settled
    # the same groups in session order: the first waiting, whatever the scores
    assert choose([0, 1, 2, 3], "session", model).index == 0
    assert choose([2, 0], "session").why == "in session order"


def test_unscored_groups_wait_and_nothing_scored_keeps_the_session_order():
    assert choose([5, 6, 7], "uncertain", {7: [1.0, 0.0]}).index == 7
    first = choose([5, 6, 7], "uncertain", {})
    assert (first.index, first.value, first.why) == (5, None, "in session order: no group is scored yet")
    assert choose([], "uncertain", {}) is None


def test_a_tie_of_gaps_keeps_the_session_order_and_disagreement_orders_by_discord():
    assert choose([4, 2], "uncertain", {2: [1.0, 1.0], 4: [0.0, 0.0]}).index == 4
    a = {0: [1, 2, 3], 1: [1, 2, 3]}
    b = {0: [1, 2, 3], 1: [3, 2, 1]}
    pick = choose([0, 1], "disagree", a, b)
    assert (pick.index, pick.why) == (1, "the reward runs disagree on 100% of its pairs")


def test_an_unknown_order_is_refused():
    with pytest.raises(ValueError, match="Unknown order 'loudest'"):
        choose([0], "loudest")
