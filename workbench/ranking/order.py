"""Which prompt of a sampling session to rank next. Light: no torch.

- `session`: the order the sampler wrote the groups (the datasets' order, or its seeded shuffle).
- `uncertain`: where the project's reward model is least sure: among the groups waiting, the one whose
  two best-scored candidates it separates least (the smallest gap between its first and second score).
  A person's ranking there settles what the model cannot tell apart, so each ranking teaches the most.
- `disagree`: where two reward runs of the project disagree most (`discord`: the share of candidate
  pairs the two order oppositely; the highest goes first). The session records the two runs
  (`reward_runs`, the newest two by default: `scoring.disagreeing_runs`); the ranking screen scores
  each group with both, in one child process holding the two models.

Only scored groups compete; a group still waiting for its scores comes after them, and with nothing
scored yet the session's order holds. Each pick carries the words that say why it was picked.
A pick made before every waiting group was scored is not `settled`: the ranking screen picks again as
scores come, while the person has not touched the cards and for `SETTLE_SECONDS` after they were shown
(always when they were shown before any score), so a session opened on groups sampled ahead starts on
the right prompt without the cards changing under someone who reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

ORDERS = ("session", "uncertain", "disagree")
ORDER_HELP = ("Which prompt comes next: session (the sampler's order), uncertain (where the newest reward run "
              "separates the two best candidates least) or disagree (where two reward runs order the candidates "
              "most differently; needs two completed reward runs). The last two pick among the groups sampled "
              "ahead.")
SETTLE_SECONDS = 10.0  # how long after showing a prompt the screen may replace it by a better-scored one
ACTIVE_AHEAD = 32  # groups an uncertain or disagree session keeps sampled ahead, so there is a choice to make


@dataclass(frozen=True)
class Pick:
    index: int
    why: str
    value: float | None = None  # the gap (uncertain) or discord (disagree) it was picked for
    settled: bool = True  # every waiting group was scored when it was picked (False: it may change)


def gap(scores: list[float]) -> float:
    """How far the best-scored candidate is ahead of the second (0: the model cannot tell them apart)."""
    if len(scores) < 2:
        return float("inf")
    first, second = sorted(scores, reverse=True)[:2]
    return first - second


def discord(a: list[float], b: list[float]) -> float:
    """The share of candidate pairs two reward runs order oppositely (0: same order, 1: reversed)."""
    pairs = [(i, j) for i, j in combinations(range(min(len(a), len(b))), 2)]
    if not pairs:
        return 0.0
    return sum((a[i] - a[j]) * (b[i] - b[j]) < 0 for i, j in pairs) / len(pairs)


def still(scored: int, waiting: list[int]) -> str:
    """What is still being scored, for a pick made before every waiting group was."""
    return "" if scored >= len(waiting) else f" ({len(waiting) - scored} more being scored)"


def choose(waiting: list[int], order: str, scores: dict[int, list[float]] | None = None,
           second: dict[int, list[float]] | None = None) -> Pick | None:
    """The next index of `waiting` (unranked groups in the session's order) for `order`, and why.

    `scores` maps an index to the reward model's score of each candidate; `second`, for `disagree`,
    another run's."""
    if not waiting:
        return None
    scores = scores or {}
    if order == "uncertain":
        scored = [i for i in waiting if i in scores and len(scores[i]) >= 2]
        if scored:
            best = min(scored, key=lambda i: (gap(scores[i]), waiting.index(i)))
            value = gap(scores[best])
            others = len(scored) - 1
            return Pick(best, f"least sure: its top two answers differ by {value:.3f}"
                              + (f", the smallest of {others + 1} scored" if others else "")
                              + still(len(scored), waiting), value, len(scored) == len(waiting))
        return Pick(waiting[0], "in session order: no group is scored yet", settled=False)
    if order == "disagree":
        second = second or {}
        both = [i for i in waiting if i in scores and i in second]
        if both:
            best = max(both, key=lambda i: (discord(scores[i], second[i]), -waiting.index(i)))
            value = discord(scores[best], second[best])
            return Pick(best, f"the reward runs disagree on {value:.0%} of its pairs" + still(len(both), waiting),
                        value, len(both) == len(waiting))
        return Pick(waiting[0], "in session order: no group is scored by both runs yet", settled=False)
    if order != "session":
        raise ValueError(f"Unknown order '{order}': expected {', '.join(ORDERS)}.")
    return Pick(waiting[0], "in session order")


def choose_latest(waiting: list[int], order: str, groups: dict[int, dict],
                  scores: dict[tuple[int, int], list[float]],
                  second: dict[tuple[int, int], list[float]] | None = None) -> Pick | None:
    """`choose` where scores are kept by (index, round): only those of each group's latest round count."""

    def of_latest(by_key: dict[tuple[int, int], list[float]]) -> dict[int, list[float]]:
        keys = {i: (i, groups[i].get("round", 0)) for i in waiting}
        return {i: by_key[key] for i, key in keys.items() if key in by_key}

    return choose(waiting, order, of_latest(scores), of_latest(second or {}))
