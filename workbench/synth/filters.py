"""Filters for generated records: length, a required pattern or form, agreement with a known answer,
and deduplication (exact after normalisation, and near-duplicates by word-shingle Jaccard similarity).

Pure functions and one small stateful `Deduper`; no model, no file.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

THINK = re.compile(r"^\s*<think>(.*?)</think>\s*(.*)$", re.DOTALL)
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?|[-+]?\.\d+")
BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
ANSWER_PREFIX = re.compile(r"^(?:the\s+)?(?:final\s+)?answer\s*(?:is)?\s*[:=]?\s*", re.IGNORECASE)


def normalise(text: str) -> str:
    """Case, width, punctuation and runs of spaces removed: what makes two texts 'the same' to a reader."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(c).startswith(("P", "S")) else c for c in text)
    return " ".join(text.split())


def shingles(text: str, n: int = 3) -> frozenset[tuple[str, ...]]:
    """The set of n-word windows of the normalised text (the whole text when it is shorter than n words)."""
    words = normalise(text).split()
    if len(words) < n:
        return frozenset([tuple(words)]) if words else frozenset()
    return frozenset(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


@dataclass
class Deduper:
    """Remembers kept texts; `check(text)` says 'duplicate', 'near_duplicate' or None (then remembers it).

    Near-duplicates are found through an index from shingle to kept texts, so only texts sharing at
    least one shingle are compared. `threshold` 1.0 leaves near-duplicates alone."""

    threshold: float = 0.8
    n: int = 3
    exact: bool = True
    _seen: set[str] = field(default_factory=set)
    _kept: list[frozenset] = field(default_factory=list)
    _index: dict[tuple, list[int]] = field(default_factory=dict)

    def check(self, text: str) -> str | None:
        key = normalise(text)
        if self.exact and key in self._seen:
            return "duplicate"
        grams = shingles(text, self.n)
        if self.threshold < 1.0:
            candidates = {i for g in grams for i in self._index.get(g, ())}
            if any(jaccard(grams, self._kept[i]) >= self.threshold for i in candidates):
                return "near_duplicate"
        self._seen.add(key)
        self._kept.append(grams)
        for g in grams:
            self._index.setdefault(g, []).append(len(self._kept) - 1)
        return None


def split_reasoning(text: str) -> tuple[str, str] | None:
    """(thought, answer) of '<think>thought</think> answer', or None when the text is not of that form
    or either part is empty."""
    found = THINK.match(text)
    if not found or not found.group(1).strip() or not found.group(2).strip():
        return None
    return found.group(1).strip(), found.group(2).strip()


def is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def final_answer(text: str) -> str:
    """The answer part of a reasoning trace (after </think>), a \\boxed{...} inside it, or the text itself."""
    parts = split_reasoning(text)
    answer = parts[1] if parts else text
    boxed = BOXED.findall(answer)
    return boxed[-1] if boxed else answer


def answers_agree(answer: str, known: str) -> bool:
    """True when `answer` states the `known` answer: numbers compare by value (the last number of the
    answer), other answers by their normalised words (equal, or the known one closing the answer)."""
    known_number = _number(known.strip())
    if known_number is not None:
        found = NUMBER.findall(answer)
        return bool(found) and _number(found[-1]) == known_number
    said = normalise(ANSWER_PREFIX.sub("", answer.strip()))
    expected = normalise(known)
    return bool(expected) and (said == expected or said.endswith(" " + expected))


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


@dataclass
class Filters:
    """The checks a generation must pass; `reason(text, known)` names the first it fails, or None."""

    min_chars: int = 0
    max_chars: int = 0
    require_regex: str = ""
    require_format: str = "none"  # none | json | think
    check_answer: bool = False

    def reason(self, text: str, known: str | None = None) -> str | None:
        if not text.strip():
            return "empty"
        if len(text) < self.min_chars:
            return "too_short"
        if self.max_chars and len(text) > self.max_chars:
            return "too_long"
        if self.require_format == "think" and split_reasoning(text) is None:
            return "bad_format"
        if self.require_format == "json" and not is_json(text):
            return "bad_format"
        if self.require_regex and not re.search(self.require_regex, text):
            return "no_match"
        if self.check_answer and known is not None and not answers_agree(final_answer(text), str(known)):
            return "disagrees"
        return None


@dataclass
class Tally:
    """How many were generated and kept, and how many each filter dropped."""

    generated: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        return {"generated": self.generated, "kept": self.kept, "dropped": dict(sorted(self.dropped.items()))}

    def summary(self) -> str:
        drops = ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in sorted(self.dropped.items())) or "none"
        return f"{self.generated} generated, {self.kept} kept; dropped: {drops}"
