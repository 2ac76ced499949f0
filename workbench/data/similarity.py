"""The similarity kinds, for embedding models: pairs (an anchor, a text that matches it, and perhaps one that
does not) and scored pairs (two texts and how alike they are).

Canonical forms:
- pair: {"anchor": str, "positive": str} plus "negative": str for a triplet
- scored_pair: {"a": str, "b": str, "score": number}

The names the public sets use are read as these: query or question for anchor, pos/neg for
positive/negative; sentence1/sentence2 or text1/text2 for a and b, label for a numeric score.
"""

from __future__ import annotations

import math
from typing import Any

from workbench.data.checks import RecordProblem, text

ANCHOR_NAMES = ("anchor", "query", "question")
POSITIVE_NAMES = ("positive", "pos")
NEGATIVE_NAMES = ("negative", "neg")
SIDE_NAMES = (("a", "b"), ("sentence1", "sentence2"), ("text1", "text2"))
SCORE_NAMES = ("score", "label")


def _first(keys: set[str], names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in keys), None)


def is_pair(keys: set[str]) -> bool:
    return _first(keys, ANCHOR_NAMES) is not None and _first(keys, POSITIVE_NAMES) is not None


def is_scored_pair(keys: set[str]) -> bool:
    return any({a, b} <= keys for a, b in SIDE_NAMES) and _first(keys, SCORE_NAMES) is not None


def pair(record: dict[str, Any]) -> dict[str, Any]:
    keys = {k for k, v in record.items() if v is not None}
    anchor, positive = _first(keys, ANCHOR_NAMES) or "anchor", _first(keys, POSITIVE_NAMES) or "positive"
    out = {"anchor": text(record, anchor), "positive": text(record, positive)}
    negative = _first(keys, NEGATIVE_NAMES)
    if negative is not None:
        out["negative"] = text(record, negative)
        if out["negative"] == out["positive"]:
            raise RecordProblem(f"'{positive}' and '{negative}' are the same text; a triplet needs two different ones")
    return out


def scored_pair(record: dict[str, Any]) -> dict[str, Any]:
    keys = {k for k, v in record.items() if v is not None}
    a, b = next(((a, b) for a, b in SIDE_NAMES if {a, b} <= keys), ("a", "b"))
    name = _first(keys, SCORE_NAMES) or "score"
    score = record.get(name)
    if isinstance(score, str):
        try:
            score = float(score)  # a CSV cell
        except ValueError:
            pass
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        raise RecordProblem(f"'{name}' should be a number (how alike the two texts are), found {score!r}"
                            if record.get(name) is not None else f"missing field '{name}'")
    return {"a": text(record, a), "b": text(record, b), "score": float(score)}
