"""Parse a reward spec: "name[:weight],name[:weight]...", e.g. "format:1,numeric:2"."""

from __future__ import annotations

import re

from workbench.rewards.library import RewardError

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_spec(spec: str) -> dict[str, float]:
    """{name: weight} in the spec's order; a name without a weight weighs 1."""
    weights: dict[str, float] = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name, sep, raw = (s.strip() for s in item.partition(":"))
        if not NAME.fullmatch(name):
            raise RewardError(f"Reward '{item}': '{name}' is not a reward name (letters, digits and _).")
        try:
            weight = float(raw) if sep else 1.0
        except ValueError:
            raise RewardError(f"Reward '{item}': the weight '{raw}' is not a number.") from None
        if weight != weight or weight in (float("inf"), float("-inf")):
            raise RewardError(f"Reward '{item}': the weight must be a finite number.")
        if name in weights:
            raise RewardError(f"Reward '{name}' is named twice in '{spec}'; give it one weight.")
        weights[name] = weight
    if not weights:
        raise RewardError("No reward named: give at least one, e.g. 'format' or 'format:1,numeric:2'.")
    return weights
