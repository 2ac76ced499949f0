"""Active ranking on a synthetic task: reward-model pair accuracy after N rankings, least-sure order vs session order.

The task: each prompt has 4 candidate answers, each a bag of words from a 300-word vocabulary. A hidden
rule scores an answer (+1 for each of 15 liked words, -1 for each of 15 disliked ones); a simulated
person ranks each group by it (ties broken at random), as the ranking screen would commit it. The
reward model learns from the pairs those rankings imply and scores every group waiting.

The reward model here is a Bradley-Terry model linear in word counts (logistic loss on pair differences,
L2-regularised, refit after every 8 rankings), a stand-in for the transformer one: the order only reads its
scores, `workbench.ranking.order.choose` picks each next prompt exactly as the ranking screen does, and the
pool it picks from is the 32 groups a session samples ahead (`ACTIVE_AHEAD`), in a shuffled session order.
Accuracy is measured on 300 held-out groups: the share of their candidate pairs (with different hidden
scores) the model orders as the rule does.

    .venv/bin/python bench/active_ranking.py [--seeds 20] [--budget 8,16,32,64,128]
"""

from __future__ import annotations

import argparse
from itertools import combinations

import numpy as np

from workbench.ranking.order import ACTIVE_AHEAD, choose

VOCAB, LIKED, DISLIKED, WORDS, CANDIDATES, REFIT = 300, 15, 15, 12, 4, 8


def make_task(rng: np.random.Generator, prompts: int):
    """(groups of candidate count vectors [prompts, candidates, vocab], the hidden rule's weights)."""
    rule = np.zeros(VOCAB)
    special = rng.choice(VOCAB, LIKED + DISLIKED, replace=False)
    rule[special[:LIKED]], rule[special[LIKED:]] = 1.0, -1.0
    groups = np.zeros((prompts, CANDIDATES, VOCAB))
    for p in range(prompts):
        for c in range(CANDIDATES):
            words = rng.choice(VOCAB, WORDS)
            np.add.at(groups[p, c], words, 1.0)
    return groups, rule


def person_ranking(rng, group, rule) -> list[int]:
    """Best first by the hidden rule, a tie broken at random."""
    hidden = group @ rule + rng.uniform(0, 1e-3, len(group))
    return list(np.argsort(-hidden))


def fit(pairs: list[tuple[np.ndarray, np.ndarray]], l2: float = 1.0, steps: int = 200) -> np.ndarray:
    """Bradley-Terry weights: maximise log sigmoid(w . (chosen - rejected)) - l2/2 |w|^2 (Newton's method)."""
    w = np.zeros(VOCAB)
    if not pairs:
        return w
    x = np.array([c - r for c, r in pairs])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w)))
        grad = x.T @ (1 - p) - l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(VOCAB)
        step = np.linalg.solve(hess, grad)
        w += step
        if np.abs(step).max() < 1e-6:
            break
    return w


def pairs_of(group, ranking: list[int]):
    return [(group[ranking[i]], group[ranking[j]]) for i, j in combinations(range(len(ranking)), 2)]


def pair_accuracy(w, groups, rule) -> float:
    right = total = 0
    for group in groups:
        hidden, model = group @ rule, group @ w
        for i, j in combinations(range(len(group)), 2):
            if hidden[i] == hidden[j]:
                continue
            total += 1
            right += (hidden[i] - hidden[j]) * (model[i] - model[j]) > 0
    return right / total


def run(order: str, seed: int, budget: list[int]) -> dict[int, float]:
    """Accuracy after each budget of rankings. `disagree` ranks where two reward models disagree most, each
    fitted on every other ranking (two reward runs trained on different halves of the rankings)."""
    rng = np.random.default_rng(seed)
    groups, rule = make_task(rng, 1000 + 300)
    pool, held_out = groups[:1000], groups[1000:]
    session = list(rng.permutation(len(pool)))  # the session's (shuffled) prompt order
    person = np.random.default_rng(seed + 10_000)
    pairs, done, w, accuracy = [], [], np.zeros(VOCAB), {}
    halves: list[list] = [[], []]
    w2 = np.zeros(VOCAB)
    while len(done) < max(budget):
        waiting = [i for i in session if i not in set(done)][:ACTIVE_AHEAD]  # what the sampler has ready
        scores = {int(i): list(pool[i] @ w) for i in waiting} if done else {}
        second = {int(i): list(pool[i] @ w2) for i in waiting} if done else {}
        pick = choose([int(i) for i in waiting], order, scores, second)
        done.append(pick.index)
        ranked = pairs_of(pool[pick.index], person_ranking(person, pool[pick.index], rule))
        pairs += ranked
        halves[len(done) % 2] += ranked
        if len(done) % REFIT == 0:
            w, w2 = (fit(halves[0]), fit(halves[1])) if order == "disagree" else (fit(pairs), w2)
        if len(done) in budget:
            accuracy[len(done)] = pair_accuracy(fit(pairs), held_out, rule)
    return accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget", default="8,16,32,64,128")
    args = parser.parse_args()
    budget = [int(b) for b in args.budget.split(",")]
    orders = ("session", "uncertain", "disagree")
    results = {order: [run(order, seed, budget) for seed in range(args.seeds)] for order in orders}
    print(f"pair accuracy on 300 held-out groups, mean ± std over {args.seeds} seeds "
          f"(4 candidates a prompt, refit every {REFIT} rankings, pool of {ACTIVE_AHEAD} sampled ahead)")
    print(f"{'rankings':>9}{'session order':>18}{'least sure first':>20}{'gain':>8}{'two runs disagree':>21}{'gain':>8}")
    for n in budget:
        a = np.array([r[n] for r in results["session"]])
        b = np.array([r[n] for r in results["uncertain"]])
        c = np.array([r[n] for r in results["disagree"]])
        print(f"{n:>9}{a.mean():>12.3f} ± {a.std():.3f}{b.mean():>14.3f} ± {b.std():.3f}{b.mean() - a.mean():>+8.3f}"
              f"{c.mean():>15.3f} ± {c.std():.3f}{c.mean() - a.mean():>+8.3f}")


if __name__ == "__main__":
    main()
