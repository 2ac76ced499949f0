"""Answers a person marked good or bad while ranking (a thumbs up or down on one answer), kept append-only,
and the `unpaired_label` dataset they make for KTO.

One JSON object a line in `projects/<p>/rankings/labels.jsonl`: an `unpaired_label` record
{"prompt", "completion", "label": true (good) | false (bad)} with where the answer was shown
{"session", "index", "round", "candidate", "source", "by", "time"}. A later line for the same answer
(session, index, round, candidate) replaces its label, and "label": null takes it off, so that a second
press and an undo are appends like the first mark. Each mark is fsynced before `commit` returns; the
reader skips a half-written last line and lines that are no mark. Light: no torch.
"""

from __future__ import annotations

import json
import time
from typing import Any

from workbench import locations
from workbench.data.prompts import as_messages
from workbench.ranking.rankings import (
    RankingError,
    append,
    rankings_as_dataset,
    write_dataset,
)

DATASET = "rankings-labels"

Key = tuple[str, int, int, int]  # (session, index, round, candidate)


def make_mark(prompt: Any, completion: str, label: bool | None, session: str, index: int, round: int,
              candidate: int, source: str = "", by: str = "person") -> dict[str, Any]:
    """A mark of one answer: good (True), bad (False) or taken off (None)."""
    if label is not None and not isinstance(label, bool):
        raise RankingError(f"a mark is good (true), bad (false) or none (null), not {label!r}")
    if not isinstance(completion, str) or not completion.strip():
        raise RankingError("an empty answer cannot be marked good or bad")
    return {"prompt": prompt, "completion": completion, "label": label, "session": session, "index": index,
            "round": round, "candidate": candidate, "source": source, "by": by, "time": time.time()}


def commit(project: str, mark: dict[str, Any]) -> dict[str, Any]:
    """Append one mark; it is on disk when this returns."""
    return append(locations.answer_labels_file(project), mark)


def key(mark: dict[str, Any]) -> Key:
    return mark["session"], mark["index"], mark["round"], mark["candidate"]


def read(project: str) -> list[dict[str, Any]]:
    """Every well-formed mark, oldest first (a half-written last line and lines that are no mark left out)."""
    try:
        data = locations.answer_labels_file(project).read_bytes()
    except FileNotFoundError:
        return []
    marks = []
    for line in data.split(b"\n")[:-1]:
        try:
            mark = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            continue
        if _well_formed(mark):
            marks.append(mark)
    return marks


def _well_formed(mark: Any) -> bool:
    def position(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    return (isinstance(mark, dict) and isinstance(mark.get("session"), str)
            and all(position(mark.get(name)) for name in ("index", "round", "candidate"))
            and (mark.get("label") is None or isinstance(mark.get("label"), bool))
            and isinstance(mark.get("completion"), str) and isinstance(mark.get("prompt"), (str, list)))


def current(project: str, session: str | None = None) -> dict[Key, dict[str, Any]]:
    """The marks standing now (the latest line of each answer, unless it took the mark off), of one session
    or of all."""
    latest: dict[Key, dict[str, Any]] = {}
    for mark in read(project):
        if session is None or mark["session"] == session:
            latest[key(mark)] = mark
    return {k: mark for k, mark in latest.items() if mark["label"] is not None}


def labels_as_dataset(project: str) -> tuple[int, int]:
    """Write (or refresh) the `unpaired_label` dataset `rankings-labels` from the marks standing now;
    returns (good, bad). The prompt is stored as messages, as the rankings dataset stores it."""
    rows = [{"prompt": as_messages(mark["prompt"]), "completion": mark["completion"], "label": mark["label"],
             "by": mark.get("by", "person"), "session": mark["session"], "index": mark["index"]}
            for mark in current(project).values() if mark["completion"].strip()]
    if not rows:
        raise RankingError("No answer is marked good or bad yet (+ or - on a card).")
    write_dataset(project, DATASET, "unpaired_label", rows, locations.answer_labels_file(project))
    good = sum(1 for r in rows if r["label"])
    return good, len(rows) - good


def refresh_datasets(project: str) -> tuple[int | None, tuple[int, int] | None]:
    """Rewrite the datasets a ranking session makes: `rankings` (its preference pairs) and `rankings-labels`
    (the answers marked good or bad), each when it has something; (pairs, (good, bad)), None for one left
    unwritten. RankingError, saying why for each, when neither has anything."""
    pairs = labelled = None
    problems = []
    try:
        pairs = rankings_as_dataset(project)
    except RankingError as exc:
        problems.append(str(exc))
    try:
        labelled = labels_as_dataset(project)
    except RankingError as exc:
        problems.append(str(exc))
    if pairs is None and labelled is None:
        raise RankingError(" ".join(problems))
    return pairs, labelled
