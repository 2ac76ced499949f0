"""What the ranking screen's threads do: read a sampling session from its files, score its groups.

The sampler appends one group of candidates a line to `candidates.jsonl`; a resampled
prompt comes back as a new line with the same index and a higher round. The feed reads
only the bytes appended since the last call (a half-written line waits for its end) and
keeps the latest round of each index, in the order the sampler first wrote them.
The project's latest reward model, when it has one, scores the groups in a child process; a
`disagree` session's child holds its two reward runs and gives both runs' scores of each group.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.jobs import store
from workbench.ranking import candidates
from workbench.ranking import order as ordering
from workbench.ranking import rankings as ranking
from workbench.run.events import JsonlTail

SCORE_TIMEOUT = 120.0


class SessionFeed:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.tail = JsonlTail(self.run_dir / candidates.CANDIDATES)
        self.latest: dict[int, dict[str, Any]] = {}

    def read_new(self) -> list[dict[str, Any]]:
        """The groups that are new, or newer rounds of known ones, since the last call."""
        fresh = []
        for group in self.tail.read_dicts():
            index, round_ = group.get("index"), group.get("round", 0)
            if not isinstance(index, int) or not isinstance(group.get("candidates"), list):
                continue
            known = self.latest.get(index)
            if known is None or round_ > known.get("round", 0):
                self.latest[index] = group
                fresh.append(group)
        return fresh


@dataclass(frozen=True)
class SamplerState:
    """How far the sampler has gone and whether it is still working."""

    sampled: int
    total: int | None
    alive: bool
    done: bool
    state: str
    message: str

    def waiting_text(self) -> str:
        if self.state == "failed":
            return f"The sampler failed: {self.message}"
        at = f"{self.sampled}/{self.total}" if self.total else str(self.sampled)
        if not self.alive and not self.done and self.state not in ("starting",):
            return f"The sampler is not running ({self.state}) at {at}: start a new session to sample more."
        text = f"waiting for candidates (sampler at {at})"
        if self.sampled == 0 and self.message:
            text += f": {self.message}"
        return text


def read_state(project: str, run_id: str, feed: SessionFeed) -> SamplerState:
    """The sampler's state from its run folder (state derived by the job store, progress by the feed)."""
    try:
        info = store.get(project, run_id)
        state, alive, message = info.state, info.alive, info.message
    except store.RunError as exc:
        state, alive, message = "failed", False, str(exc)
    total = candidates.total_prompts(feed.run_dir)
    done = total is not None and set(range(total)) <= set(feed.latest)
    return SamplerState(sampled=len(feed.latest), total=total, alive=alive, done=done, state=state,
                        message=message)


def session_records(project: str, run_id: str) -> list[dict[str, Any]]:
    """The person's committed rankings of this session, oldest first."""
    return [r for r in ranking.read(project) if r.get("session") == run_id and r.get("by", "person") == "person"]


def score_groups(project: str, groups: queue.Queue, leaving: threading.Event,
                 note: Callable[[str, bool, str], None],
                 scored: Callable[[int, int, list[float], list[float] | None], None],
                 order: str = "session", reward_runs: str = "") -> None:
    """One child holds the project's latest reward model; the groups put on `groups` are scored in order.

    For a `disagree` session the child holds its two reward runs (`reward_runs`, "ID,ID", else the
    newest two) and each group gets both runs' scores. `note(run_id, ready, error)` says when the
    model loads, is ready or fails (run_id: the first run, the one the person's rankings are compared
    with); `scored(index, round, scores, second)` gives each group's scores (second: the other run's,
    or None). Returns at once when the project has no reward model, and ends when `leaving` is set or
    `groups` yields None.
    """
    from workbench.ranking import scoring

    second = ""
    if order == "disagree":
        try:
            run_id, second = scoring.disagreeing_runs(project, reward_runs)
        except scoring.ScoringError as exc:  # a recorded run is gone: ranking goes on in the session's order
            note(reward_runs or "(the newest two)", False, str(exc))
            return
    else:
        run_id = scoring.latest_reward_run(project)
    if not run_id:
        return
    note(run_id, False, "")
    scorer = scoring.Scorer(project, run_id, second)
    try:
        scorer.start()
        while not scorer.ready and not scorer.error and not leaving.is_set():
            time.sleep(0.1)
        note(run_id, bool(scorer.ready), scorer.error or "")
        while scorer.ready and not leaving.is_set():
            group = groups.get()
            if group is None:
                break
            texts = [c["text"] for c in group["candidates"]]
            try:
                if second:
                    scores, other = scorer.score_both(group["prompt"], texts, timeout=SCORE_TIMEOUT)
                else:
                    scores, other = scorer.score(group["prompt"], texts, timeout=SCORE_TIMEOUT), None
            except scoring.ScoringError:
                if scorer.error:
                    raise
                continue  # this group alone could not be scored: the others still can
            scored(group["index"], group.get("round", 0), scores, other)
    except (scoring.ScoringError, OSError) as exc:  # the child died: ranking goes on without scores
        note(run_id, False, str(exc) or type(exc).__name__)
    finally:
        scorer.close()


def session_order(run_dir) -> tuple[str, str]:
    """The session's `order` parameter ("session" for a session made before there was a choice) and
    its `reward_runs` ("ID,ID" for a disagree session, "" for the newest two)."""
    from workbench.run.spec import JobSpec

    try:
        params = JobSpec.load(run_dir).params
        value, runs = params.get("order", "session"), str(params.get("reward_runs", ""))
    except (OSError, ValueError, KeyError, TypeError):
        return "session", ""
    return (value, runs) if value in ordering.ORDERS else ("session", "")

