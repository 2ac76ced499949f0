"""A sampling session's files, read and written by the ranking screen and the sampler. Light: no torch.

A session is a run of the method `sample`; its folder holds:
- `prompts.json`: written once at start, {"prompts": [...], "models": [labels], "n", "ab", "datasets"};
  the prompt at position i of "prompts" is the session's prompt `index` i.
- `candidates.jsonl`: one line per generated group, appended and fsynced as soon as it exists:
  {"index", "round" (0, then +1 per resample), "prompt", "candidates": [{"text", "source"}], "time", "ab"};
  a candidate the token limit ended before the model did also has "cut": true.
- `requests.jsonl`: {"index": i} lines appended by the ranking screen; each asks for one fresh group
  of prompt i. A request is pending while the index has fewer resampled rounds than requests
  (requests for an index that has no group yet wait for its first group).

Readers skip a half-written last line, so a crash of either side loses at most one line.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from workbench import models
from workbench import project as projects
from workbench.files import write_atomic
from workbench.run import layout
from workbench.run.events import JsonlTail

CANDIDATES = layout.CANDIDATES
REQUESTS = layout.REQUESTS
PROMPTS = layout.PROMPTS
TYPED_DATASET = "prompts"
METHOD = "sample"


class SessionError(ValueError):
    """A request about a session that cannot be served; the message says why."""


# --- Appending ------------------------------------------------------------------------------------

def append_line(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line, flushed and fsynced; a half line left by a crash is closed off first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as f:
        if f.tell() > 0 and not _ends_with_newline(path):
            f.write(b"\n")
        f.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
        f.flush()
        os.fsync(f.fileno())


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


# --- Groups of candidates ---------------------------------------------------------------------------

def read_groups(run_dir: Path) -> list[dict[str, Any]]:
    """Every group written so far, oldest first; a half-written last line is left out."""
    return [g for g in JsonlTail(Path(run_dir) / CANDIDATES).read_dicts()
            if isinstance(g.get("index"), int) and isinstance(g.get("candidates"), list)]


def latest_groups(run_dir: Path) -> dict[int, dict[str, Any]]:
    """The latest round of each prompt index (a later line wins a tie)."""
    latest: dict[int, dict[str, Any]] = {}
    for group in read_groups(run_dir):
        known = latest.get(group["index"])
        if known is None or group.get("round", 0) >= known.get("round", 0):
            latest[group["index"]] = group
    return latest


def candidate(text: str, source: str, cut: bool = False) -> dict[str, Any]:
    """A candidate as the session file (and a ranking made of it) keeps it: `cut` only when the token limit
    ended the answer."""
    return {"text": text, "source": source, **({"cut": True} if cut else {})}


def write_group(run_dir: Path, index: int, round_: int, prompt: Any, candidates: list[dict[str, str]],
                ab: bool = False) -> dict[str, Any]:
    """Append one group (the sampler's side); it is on disk when this returns."""
    group = {"index": index, "round": round_, "prompt": prompt, "candidates": candidates,
             "time": time.time(), "ab": ab}
    append_line(Path(run_dir) / CANDIDATES, group)
    return group


# --- Resample requests ------------------------------------------------------------------------------

def request_resample(run_dir: Path, index: int) -> None:
    """Ask the sampler for a fresh group of prompt `index` (it comes back with the next round)."""
    total = total_prompts(run_dir)
    if not isinstance(index, int) or index < 0 or (total is not None and index >= total):
        raise SessionError(f"This session has no prompt {index}" + (f" (it has 0..{total - 1})." if total else "."))
    append_line(Path(run_dir) / REQUESTS, {"index": index, "time": time.time()})


def read_requests(run_dir: Path) -> list[int]:
    return [r["index"] for r in JsonlTail(Path(run_dir) / REQUESTS).read_dicts() if isinstance(r.get("index"), int)]


def pending_requests(run_dir: Path) -> list[int]:
    """Indices with a request not served yet, in the order of their oldest unserved request."""
    requests = read_requests(run_dir)
    if not requests:
        return []
    return unserved(requests, {i: g.get("round", 0) for i, g in latest_groups(run_dir).items()})


def unserved(requests: list[int], rounds: dict[int, int]) -> list[int]:
    """The indices of `requests` (one per request, oldest first) that outnumber their resampled rounds."""
    seen: Counter[int] = Counter()
    pending: list[int] = []
    for index in requests:
        seen[index] += 1
        if index in rounds and seen[index] > rounds[index] and index not in pending:
            pending.append(index)
    return pending


# --- The session as a whole ----------------------------------------------------------------------------

def write_prompts(run_dir: Path, prompts: list[Any], **about: Any) -> None:
    write_atomic(Path(run_dir) / PROMPTS, json.dumps({"prompts": prompts, **about}, ensure_ascii=False))


def session_info(run_dir: Path) -> dict[str, Any] | None:
    """The contents of `prompts.json`, or None before the sampler has written it."""
    try:
        data = json.loads((Path(run_dir) / PROMPTS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("prompts"), list) else None


def total_prompts(run_dir: Path) -> int | None:
    """How many prompts the session samples; None until the sampler has chosen them."""
    info = session_info(run_dir)
    return None if info is None else len(info["prompts"])


def session_done(run_dir: Path) -> bool:
    """True once every prompt of the session has a group (resamples may still come)."""
    total = total_prompts(run_dir)
    if total is None:
        return False
    return set(range(total)) <= {g["index"] for g in read_groups(run_dir)}


def sessions(project: str) -> list:
    """The sampling sessions of a project (RunInfo of `sample` runs), oldest first."""
    from workbench.jobs import store

    projects.load(project)
    return [info for info in store.list_runs(project) if info.method == METHOD]


def newest_session(project: str) -> str:
    found = sessions(project)
    if not found:
        raise SessionError(f"Project '{project}' has no sampling session yet: start one with `workbench sample`.")
    return found[-1].id


def session_dir(project: str, session: str = "") -> Path:
    """The folder of a sampling session (the newest when `session` is empty), checked to be one."""
    from workbench import locations
    from workbench.run.spec import JobSpec

    session = (session or "").strip() or newest_session(project)
    folder = locations.run_dir(project, session)
    if not (folder / layout.SPEC).exists():
        raise SessionError(f"Project '{project}' has no sampling session '{session}'.")
    method = JobSpec.load(folder).method
    if method != METHOD:
        raise SessionError(f"Run '{session}' is a {method} run, not a sampling session.")
    return folder


# --- Prompts typed by a person -------------------------------------------------------------------------

def save_typed_prompts(project: str, texts: list[str]) -> str:
    """Save prompts typed in as a new dataset of kind `prompt` (`prompts`, then `prompts-2`, ...),
    so a session samples exactly the prompts typed for it; returns the dataset's name."""
    texts = [t.strip() for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise SessionError("No prompt to save: every prompt given is empty.")
    proj = projects.load(project)
    taken = {d.name for d in proj.datasets}
    name, n = TYPED_DATASET, 1
    while name in taken:
        n += 1
        name = f"{TYPED_DATASET}-{n}"
    path = proj.path / "datasets" / f"{name}.jsonl"
    write_atomic(path, "".join(json.dumps({"prompt": t}, ensure_ascii=False) + "\n" for t in texts))
    entry = projects.DatasetEntry(name=name, kind="prompt", records=len(texts),
                                  source="typed in the workbench", imported=projects.now_iso())
    proj.datasets = proj.datasets + [entry]
    proj.save()
    return name


# --- Naming models ----------------------------------------------------------------------------------

def model_label(ref: str) -> str:
    """How a candidate's source reads: `base`, a run id (with its checkpoint), or a model's name."""
    ref = (ref or "base").strip()
    if ref == "base":
        return "base"
    if ref.startswith("run:"):
        return ref[4:]
    return models.describe(ref)
