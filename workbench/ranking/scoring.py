"""Scores from a trained reward model, served by a child process to the ranking screen.

    python -m workbench.ranking.scoring PROJECT RUN_ID [RUN_ID]

The child loads each completed reward run once (its LoRA adapter with the saved score head
on the run's base, or its full model) and prints {"ready": true, "model": label}, or
{"error": message} and exits 1. Then each JSON line {"id", "prompt", "texts": [...]} on
stdin gets one line {"id", "scores": [...]} on stdout (or {"id", "error"}), flushed; with a
second run the line also holds "second": [...], that run's scores (one process, one torch, two
small models: what a `disagree` ranking session compares). It ends when stdin closes, so it
dies with the app that started it.

A score is the model's scalar for (prompt, answer), loaded and encoded by
`workbench.rewards.model` as every other user of a reward model loads and encodes it.

`Scorer` is the parent's side (no torch: a subprocess and a reader thread); `latest_reward_run`
finds the run to use, `disagreeing_runs` the two a `disagree` session compares. Heavy imports
happen inside the functions of the child.
"""

from __future__ import annotations

import collections
import itertools
import json
import subprocess
import sys
import threading
import time
from typing import Any

from workbench.jobs import store

METHOD = "reward"


class ScoringError(RuntimeError):
    """The reward model cannot score (not a completed reward run, child died, timeout)."""


def reward_runs(project: str) -> list[str]:
    """The completed reward runs of a project that have weights, oldest first."""
    return [r.id for r in store.list_runs(project) if r.method == METHOD and r.state == "completed" and r.output]


def latest_reward_run(project: str) -> str | None:
    """The newest completed reward run of a project that has weights, or None."""
    runs = reward_runs(project)
    return runs[-1] if runs else None


def disagreeing_runs(project: str, named: str = "", runs: list[str] | None = None) -> tuple[str, str]:
    """The two reward runs a `disagree` session compares: `named` ("ID,ID"), else the newest two.

    `runs` are the project's (`reward_runs`) when the caller has them. ScoringError in one line when
    the project has fewer than two, or a named one is not a completed reward run with a model."""
    runs = reward_runs(project) if runs is None else runs
    if not named.strip():
        if len(runs) < 2:
            raise ScoringError(f"The order 'disagree' needs two completed reward runs with a model; project "
                               f"'{project}' has {len(runs)}.")
        return runs[-1], runs[-2]
    ids = [part.strip() for part in named.split(",") if part.strip()]
    if len(ids) != 2 or ids[0] == ids[1]:
        raise ScoringError(f"reward_runs names two different reward runs as ID,ID, not '{named}'.")
    for run_id in ids:
        if run_id not in runs:
            raise ScoringError(f"'{run_id}' is not a completed reward run with a model of project '{project}'"
                               f" (those are: {', '.join(runs) or 'none'}).")
    return ids[0], ids[1]


def session_values(project: str, values: dict[str, str]) -> dict[str, str]:
    """A new sampling session's values as its order needs them: an ordered session samples
    `ACTIVE_AHEAD` groups ahead (unless `ahead` is set), so there is a choice to make; a `disagree`
    one records the two reward runs it compares (`reward_runs`, checked; the newest two when empty).
    ScoringError in one line when the project cannot be ordered so."""
    from workbench.ranking.order import ACTIVE_AHEAD

    values = dict(values)
    order = str(values.get("order", "session"))
    if order != "session":
        values.setdefault("ahead", str(ACTIVE_AHEAD))
    if order == "disagree":
        values["reward_runs"] = ",".join(disagreeing_runs(project, str(values.get("reward_runs", ""))))
    return values


# --- The child: the reward model itself ----------------------------------------------------------------

def load(project: str, run_id: str):
    """(reward model, label) of a reward run of `project`, on the GPU when there is one."""
    import torch

    from workbench.rewards.model import load_reward_model

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = "bfloat16" if device == "cuda" and torch.cuda.is_bf16_supported() else "float32"
    model = load_reward_model(project, f"run:{run_id}", dtype, device)
    return model, f"{run_id} ({model.folder.name})"


def score(model, prompt: Any, texts: Any) -> list[float]:
    """One score per answer to `prompt` (text or messages)."""
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ScoringError("'texts' should be a list of answers (strings).")
    return model.score([prompt] * len(texts), texts) if texts else []


def serve(model, lines, out, second=None) -> None:
    for line in lines:
        if not line.strip():
            continue
        ident = None
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ScoringError("a request is a JSON object {id, prompt, texts}")
            ident = request.get("id")
            reply = {"id": ident, "scores": score(model, request.get("prompt", ""), request.get("texts"))}
            if second is not None:
                reply["second"] = score(second, request.get("prompt", ""), request.get("texts"))
        except Exception as exc:  # noqa: BLE001 - a bad request gets an answer, the child goes on
            reply = {"id": ident, "error": str(exc) or type(exc).__name__}
        out.write(json.dumps(reply) + "\n")
        out.flush()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) not in (2, 3):
        print("usage: python -m workbench.ranking.scoring PROJECT RUN_ID [RUN_ID]", file=sys.stderr)
        return 2
    out, sys.stdout = sys.stdout, sys.stderr  # library chatter must not mix with the replies
    try:
        loaded = [load(argv[0], run_id) for run_id in argv[1:]]
    except Exception as exc:  # noqa: BLE001 - the parent reads one line saying why
        out.write(json.dumps({"error": str(exc) or type(exc).__name__}) + "\n")
        out.flush()
        return 1
    out.write(json.dumps({"ready": True, "model": " and ".join(label for _, label in loaded)}) + "\n")
    out.flush()
    serve(loaded[0][0], sys.stdin, out, second=loaded[1][0] if len(loaded) > 1 else None)
    return 0


# --- The parent: a light client ---------------------------------------------------------------------------

class Scorer:
    """A `python -m workbench.ranking.scoring` child and a thread that reads its replies.

    `start()` returns at once; `ready` turns True (or `error` gets a message) when the model
    is loaded. `score()` waits for its reply; with a `second` run, `score_both()` gives both runs'
    scores. Use from one or more threads, never the UI's."""

    def __init__(self, project: str, run_id: str, second: str = ""):
        self.project, self.run_id, self.second = project, run_id, second
        self.ready = False
        self.error: str | None = None
        self.model = ""
        self._proc: subprocess.Popen | None = None
        self._replies: dict[Any, dict] = {}
        self._changed = threading.Condition()
        self._write = threading.Lock()
        self._ids = itertools.count(1)
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)

    def start(self) -> Scorer:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "workbench.ranking.scoring", self.project, self.run_id,
             *([self.second] if self.second else [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
            bufsize=1)
        threading.Thread(target=self._read, args=(self._proc,), daemon=True, name="scorer-replies").start()
        threading.Thread(target=self._drain, args=(self._proc,), daemon=True, name="scorer-stderr").start()
        return self

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            try:
                reply = json.loads(line)
            except ValueError:
                continue
            with self._changed:
                if not isinstance(reply, dict):
                    continue
                if reply.get("ready"):
                    self.ready, self.model = True, str(reply.get("model", ""))
                elif "error" in reply and "id" not in reply:
                    self.error = str(reply["error"])
                else:
                    self._replies[reply.get("id")] = reply
                self._changed.notify_all()
        proc.wait()
        with self._changed:
            if self.error is None:
                last = next((s for s in reversed(self._stderr) if s.strip()), "")
                self.error = f"the scorer exited (status {proc.returncode})" + (f": {last}" if last else "")
            self.ready = False
            self._changed.notify_all()

    def _drain(self, proc: subprocess.Popen) -> None:
        for line in proc.stderr:
            self._stderr.append(line.rstrip())

    def wait_ready(self, timeout: float = 300.0) -> str:
        """The model's label once loaded; ScoringError if it failed or took longer than `timeout`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not self.ready and self.error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ScoringError(f"The reward model of {self.run_id}{f' and {self.second}' if self.second else ''}"
                                       f" did not load within {timeout:.0f} s.")
                self._changed.wait(left)
            if self.error is not None:
                raise ScoringError(self.error)
            return self.model

    def score(self, prompt: Any, texts: list[str], timeout: float = 120.0) -> list[float]:
        """The reward model's score of each answer to `prompt` (text or messages)."""
        return [float(s) for s in self._ask(prompt, texts, timeout)["scores"]]

    def score_both(self, prompt: Any, texts: list[str], timeout: float = 120.0) -> tuple[list[float], list[float]]:
        """(this run's, the second run's) score of each answer to `prompt`; the child holds both models."""
        if not self.second:
            raise ScoringError("This scorer holds one reward run: name a second to compare with.")
        reply = self._ask(prompt, texts, timeout)
        return [float(s) for s in reply["scores"]], [float(s) for s in reply["second"]]

    def _ask(self, prompt: Any, texts: list[str], timeout: float) -> dict:
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise ScoringError("'texts' should be a list of answers (strings).")
        if self._proc is None:
            self.start()
        started = time.monotonic()
        self.wait_ready(timeout)
        ident = next(self._ids)
        line = json.dumps({"id": ident, "prompt": prompt, "texts": texts}, ensure_ascii=False) + "\n"
        proc = self._proc
        try:
            with self._write:
                proc.stdin.write(line)
                proc.stdin.flush()
        except (AttributeError, BrokenPipeError, OSError, ValueError):
            raise ScoringError(self.error or "the scorer has exited") from None
        deadline = started + timeout
        with self._changed:
            while ident not in self._replies:
                if self.error is not None:
                    raise ScoringError(self.error)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ScoringError(f"No score within {timeout:.0f} s.")
                self._changed.wait(left)
            reply = self._replies.pop(ident)
        if "error" in reply:
            raise ScoringError(reply["error"])
        return reply

    def close(self, timeout: float = 5.0) -> None:
        """End the child: close its stdin (it exits), then terminate it if it lingers."""
        proc, self._proc = self._proc, None
        self.ready = False
        if proc is None:
            return
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> Scorer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


if __name__ == "__main__":
    sys.exit(main())
