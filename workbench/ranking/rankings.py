"""Rankings made by a person or a judge, kept append-only, and the preference pairs they imply.

One JSON object a line in `projects/<p>/rankings/rankings.jsonl`:
{"id", "time", "prompt", "candidates": [{"text", "source", "cut" (only when true: the token limit ended it)}],
 "ranking": [indices, best first],
 "tied": [indices tied at the end], "skipped": bool, "by": "person" | "judge:<model>",
 "session": the sampling run the candidates came from ("" if none), "index": the prompt's position
 in that session, "round": which of its groups was ranked}
Each commit is flushed and fsynced before `commit` returns, so a crash loses at most the
ranking being made; the reader skips a half-written last line, and a line that is no ranking
(hand-edited, damaged) is left out and named by its number (`read_log`). Light: no torch.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

from workbench import locations
from workbench import project as projects
from workbench.data.feedback import ordered_pairs, ranked_pairs
from workbench.data.prompts import as_messages
from workbench.files import write_atomic
from workbench.ranking.candidates import candidate

DATASET = "rankings"


class RankingError(ValueError):
    pass


def make_record(prompt: Any, candidates: list[dict[str, str]], ranking: list[int], tied: list[int] = (),
                skipped: bool = False, by: str = "person", session: str = "", index: int | None = None,
                round: int | None = None) -> dict[str, Any]:
    """A checked ranking record: each candidate index at most once across `ranking` and `tied`.

    `session`, `index` and `round` say which group of a sampling session was ranked."""
    n = len(candidates)
    if n < 2:
        raise RankingError("a ranking needs at least 2 candidates")
    used = list(ranking) + list(tied)
    if len(set(used)) != len(used) or not all(isinstance(i, int) and 0 <= i < n for i in used):
        raise RankingError(f"ranking and tied should name candidate indices 0..{n - 1}, each at most once")
    if by != "person" and not by.startswith("judge:"):
        raise RankingError("'by' is 'person' or 'judge:<model>'")
    for name, value in (("index", index), ("round", round)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise RankingError(f"'{name}' should be a prompt position (0, 1, ...), not {value!r}")
    return {"id": uuid.uuid4().hex[:12], "time": time.time(), "prompt": prompt,
            "candidates": [candidate(c["text"], c.get("source", ""), bool(c.get("cut"))) for c in candidates],
            "ranking": list(ranking), "tied": list(tied), "skipped": bool(skipped), "by": by,
            "session": session, "index": index, "round": round}


def commit(project: str, record: dict[str, Any]) -> dict[str, Any]:
    """Append one ranking; it is on disk when this returns."""
    return append(locations.rankings_file(project), record)


def append(path, record: dict[str, Any]) -> dict[str, Any]:
    """Append `record` as one JSON line to the log `path`, flushed and fsynced before this returns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as f:
        if f.tell() > 0 and not _ends_with_newline(path):
            f.write(b"\n")  # a crash left half a line: keep it apart from this record
        f.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
        f.flush()
        os.fsync(f.fileno())
    return record


def _ends_with_newline(path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def read(project: str) -> list[dict[str, Any]]:
    """Every committed ranking, oldest first; a half-written last line and malformed lines are left out."""
    return read_log(project)[0]


def read_log(project: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(the well-formed rankings, oldest first; "line N: why" for each line that is no ranking).
    The last line, until it ends, is a commit in progress: neither."""
    try:
        data = locations.rankings_file(project).read_bytes()
    except FileNotFoundError:
        return [], []
    records, problems = [], []
    for number, line in enumerate(data.split(b"\n")[:-1], start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
            problems.append(f"line {number}: not a JSON line")
            continue
        why = malformed(record)
        if why:
            problems.append(f"line {number}: {why}")
        else:
            records.append(record)
    return records, problems


def malformed(record: Any) -> str:
    """Why `record` is no ranking the readers of the log can use ("" when it is one)."""
    if not isinstance(record, dict):
        return f"a ranking is a JSON object, not {type(record).__name__}"
    candidates = record.get("candidates")
    if not isinstance(candidates, list) or not all(
            isinstance(c, dict) and isinstance(c.get("text"), str) and isinstance(c.get("source", ""), str)
            for c in candidates):
        return "'candidates' should be a list of {text, source} objects"
    placed = []
    for name, value in (("ranking", record.get("ranking", [])), ("tied", record.get("tied") or [])):
        if not isinstance(value, list) or not all(_is_index(i) and i < len(candidates) for i in value):
            return f"'{name}' should list candidate indices 0..{len(candidates) - 1}"
        placed += value
    if len(set(placed)) != len(placed):
        return "a candidate is placed twice"
    if not isinstance(record.get("skipped", False), bool) or not isinstance(record.get("by", "person"), str) \
            or not isinstance(record.get("session", ""), str):
        return "'skipped' should be true or false, 'by' and 'session' text"
    if any(record.get(name) is not None and not _is_index(record[name]) for name in ("index", "round")):
        return "'index' and 'round' should be prompt positions (0, 1, ...)"
    if not isinstance(record.get("prompt", ""), (str, list)):
        return "'prompt' should be text or messages"
    return ""


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def done_indices(project: str, session: str, by: str | None = None) -> set[int]:
    """The prompt indices of a session ranked or skipped so far (by anyone, or only by `by`)."""
    return {r["index"] for r in read(project)
            if r.get("session") == session and isinstance(r.get("index"), int) and (by is None or r.get("by") == by)}


def to_pairs(record: dict[str, Any]) -> list[tuple[int, int]]:
    """Every (better, worse) pair a ranking record implies; ties give none among themselves."""
    if record.get("skipped"):
        return []
    tied = list(record.get("tied") or [])
    return ordered_pairs([[i] for i in record.get("ranking", [])] + ([tied] if tied else []))


def agreement(record: dict[str, Any], scores: list[float]) -> float | None:
    """The share of the pairs a ranking implies that `scores` order the same way (strictly); None
    when the ranking implies no pair (skipped, or everything tied)."""
    pairs = to_pairs(record)
    if not pairs:
        return None
    return sum(scores[better] > scores[worse] for better, worse in pairs) / len(pairs)


def ranked_record(record: dict[str, Any]) -> dict[str, Any] | None:
    """The canonical `ranked` record of one ranking, or None when it gives no pair.

    Only the candidates the person placed are kept (ranked ones in order, then the tied rest
    as one tie group); empty answers are left out. The prompt is stored as messages because
    the candidates were sampled as replies in the chat template, and reward and DPO runs
    should see them the same way. The answers the token limit cut are listed in `cut` (by their place
    here). `by` and the session coordinates ride along as extra fields, which the record kinds ignore
    when a run reads the dataset."""
    if record.get("skipped") or not to_pairs(record):
        return None
    texts = [c.get("text", "") for c in record.get("candidates", [])]
    ranked = [i for i in record.get("ranking", []) if texts[i].strip()]
    tied = [i for i in record.get("tied") or [] if texts[i].strip()]
    order = ranked + tied
    if len(order) < 2 or (not ranked and tied):
        return None
    out: dict[str, Any] = {"prompt": as_messages(record["prompt"]), "completions": [texts[i] for i in order],
                           "ranking": list(range(len(order)))}
    if len(tied) >= 2:
        out["ties"] = [list(range(len(ranked), len(order)))]
    cut = [k for k, i in enumerate(order) if record["candidates"][i].get("cut")]
    if cut:
        out["cut"] = cut  # answers the token limit ended: DPO and ORPO leave out pairs preferring one
    if len(set(out["completions"])) < 2:
        return None  # the same answer every time: no pair to learn from
    out.update(by=record.get("by", "person"), session=record.get("session", ""), index=record.get("index"))
    return out


def rankings_as_dataset(project: str) -> int:
    """Write (or refresh) the `ranked` dataset `rankings` from the committed rankings; returns its pairs.

    One record per ranking, so that a held-out eval split keeps all the pairs of a prompt together."""
    rows = [r for r in (ranked_record(record) for record in read(project)) if r is not None]
    pairs = sum(len([1 for a, b in ranked_pairs(r) if r["completions"][a] != r["completions"][b]]) for r in rows)
    if not pairs:
        raise RankingError("No committed ranking gives a preference pair yet.")
    write_dataset(project, DATASET, "ranked", rows, locations.rankings_file(project))
    return pairs


def write_dataset(project: str, name: str, kind: str, rows: list[dict[str, Any]], source) -> None:
    """Write (or replace) the project's dataset `name` of `kind` with `rows`, one JSON line each, whole."""
    proj = projects.load(project)
    entry = projects.DatasetEntry(name=name, kind=kind, records=len(rows), source=str(source),
                                  imported=projects.now_iso())
    write_atomic(proj.path / entry.file, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    proj.datasets = [d for d in proj.datasets if d.name != name] + [entry]
    proj.save()


@dataclass
class WinRate:
    """Blind A/B results of `model` against `other`; a tie counts half a win."""

    model: str
    other: str
    wins: int = 0
    losses: int = 0
    ties: int = 0

    @property
    def games(self) -> int:
        return self.wins + self.losses + self.ties

    @property
    def rate(self) -> float:
        return (self.wins + self.ties / 2) / self.games if self.games else 0.0


def ab_win_rates(records: list[dict[str, Any]]) -> dict[tuple[str, str], WinRate]:
    """Win rates per model pair from A/B records (two candidates; the winner ranked first, or both tied).

    Keyed by the two sources in sorted order; skipped records count for nothing."""
    out: dict[tuple[str, str], WinRate] = {}
    for record in records:
        candidates = record.get("candidates", [])
        if record.get("skipped") or len(candidates) != 2:
            continue
        sources = [c.get("source", "") for c in candidates]
        key = tuple(sorted(sources))
        if key[0] == key[1]:
            continue
        score = out.setdefault(key, WinRate(*key))
        ranking = record.get("ranking") or []
        if not ranking:
            score.ties += 1
        elif sources[ranking[0]] == score.model:
            score.wins += 1
        else:
            score.losses += 1
    return out
