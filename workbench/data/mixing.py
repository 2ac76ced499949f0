"""Mixing several datasets into one training set, each in proportion to its weight.

`--mix a=0.7,b=0.3` gives each dataset a share of the mixed set; `--mix proportional`
weighs each by its size (the same as concatenating them). The mixed set keeps about
as many records as the datasets hold together: a dataset whose share is above its
size is repeated (whole passes, then a seeded sample), one below it is subsampled.
"""

from __future__ import annotations

import random

PROPORTIONAL = "proportional"


class MixError(ValueError):
    """A mix that cannot be used as written."""


def parse_mix(text: str) -> dict[str, float] | str:
    """`a=0.7,b=0.3` as {name: weight}, or `proportional`."""
    text = text.strip()
    if text == PROPORTIONAL:
        return PROPORTIONAL
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not name:
            raise MixError(f"'{part}' in --mix is not NAME=WEIGHT (e.g. --mix chat=0.7,docs=0.3 or proportional).")
        try:
            weight = float(value)
        except ValueError:
            raise MixError(f"The weight of '{name}' in --mix is not a number: '{value.strip()}'.") from None
        if not weight > 0:
            raise MixError(f"The weight of '{name}' in --mix should be above 0, not {value.strip()}.")
        if name in weights:
            raise MixError(f"'{name}' appears twice in --mix.")
        weights[name] = weight
    if not weights:
        raise MixError("--mix needs NAME=WEIGHT pairs or 'proportional'.")
    return weights


def proportional_weights(sizes: dict[str, int]) -> dict[str, float]:
    total = sum(sizes.values()) or 1
    return {name: size / total for name, size in sizes.items()}


def sample_counts(sizes: list[int], weights: list[float]) -> list[int]:
    """How many records each dataset contributes: its share of the total size, rounded
    so that the counts add up to the total exactly (largest remainders get the spare ones)."""
    total, weight_sum = sum(sizes), sum(weights)
    exact = [total * w / weight_sum for w in weights]
    counts = [int(x) for x in exact]
    spare = total - sum(counts)
    by_remainder = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[:spare]:
        counts[i] += 1
    return counts


def mix(groups: list[list], weights: list[float], seed: int) -> list:
    """One seeded, shuffled list drawing from each group as many records as its weight asks."""
    if len(groups) == 1:
        return list(groups[0])
    rng = random.Random(seed)
    mixed: list = []
    for group, count in zip(groups, sample_counts([len(g) for g in groups], weights)):
        if not group:
            continue
        whole, rest = divmod(count, len(group))
        mixed.extend(group * whole)
        mixed.extend(rng.sample(group, rest))
    rng.shuffle(mixed)
    return mixed
