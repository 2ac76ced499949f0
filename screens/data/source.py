"""What the data screen reads: pages of a dataset file, and the JSON of `workbench data`.

A dataset file is read with `json`, a page at a time: the byte offset of every line is
indexed once (fast even for 100,000 records), then a page seeks and parses its lines
only. Anything that needs the tokenizer comes from the child process
`python -m workbench.cli data PROJECT --json ...`, which can be stopped half-way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

DATA_COMMAND = (sys.executable, "-m", "workbench.cli", "data")
SPLIT_COMMAND = (sys.executable, "-m", "workbench.cli", "split")
PREVIEW_CHARS = 60


class ChildError(RuntimeError):
    """The child process failed; the message is its last line of stderr."""


@dataclass(frozen=True)
class Row:
    index: int
    kind: str
    prompt: str
    answer: str


class LineIndex:
    """Byte offsets of the non-empty lines of a JSONL file, built once per file version."""

    def __init__(self, path: Path) -> None:
        self.path = path
        stat = path.stat()
        self.version = (stat.st_size, stat.st_mtime_ns)
        self.offsets: list[int] = []
        position = 0
        with open(path, "rb") as f:
            for line in f:
                if line.strip():
                    self.offsets.append(position)
                position += len(line)

    def __len__(self) -> int:
        return len(self.offsets)

    def is_current(self) -> bool:
        stat = self.path.stat()
        return (stat.st_size, stat.st_mtime_ns) == self.version

    def rows(self, start: int, count: int, default_kind: str) -> list[Row]:
        rows = []
        with open(self.path, "rb") as f:
            for index in range(start, min(start + count, len(self.offsets))):
                f.seek(self.offsets[index])
                try:
                    record = json.loads(f.readline())
                except ValueError:
                    rows.append(Row(index, "?", "(not valid JSON)", ""))
                    continue
                rows.append(Row(index, kind_of(record, default_kind), *preview(record)))
        return rows


def kind_of(record: object, default: str) -> str:
    if not isinstance(record, dict):
        return "?"
    if "messages" in record:
        return "chat"
    if "chosen" in record and "rejected" in record:
        return "preference"
    if "prompt" in record and "completion" in record:
        return "prompt_completion"
    return default


def one_line(value: object, limit: int = PREVIEW_CHARS) -> str:
    text = " ".join(str(value).split()) if value is not None else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _content(value: object) -> object:
    """A completion may be a string or a list of messages; the text of its last message."""
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        return value[-1].get("content", "")
    return value


def preview(record: object) -> tuple[str, str]:
    """(first user message or prompt, the answer), each on one short line."""
    if not isinstance(record, dict):
        return one_line(record), ""
    messages = record.get("messages")
    if isinstance(messages, list):
        said = [m for m in messages if isinstance(m, dict)]
        user = next((m.get("content") for m in said if m.get("role") == "user"), "")
        answer = next((m.get("content") for m in reversed(said) if m.get("role") == "assistant"), "")
        return one_line(user), one_line(answer)
    prompt = _content(record.get("prompt", record.get("text", "")))
    answer = _content(record.get("completion", record.get("chosen", record.get("label", ""))))
    return one_line(prompt), one_line(answer)


def last_error_line(stderr: str, code: int) -> str:
    """The CLI's `workbench: error: ...` line, else the last line of stderr."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("workbench: error:"):
            return line.removeprefix("workbench: error:").strip()
    return lines[-1] if lines else f"`workbench data` exited with status {code}"


def run_json(argv: Sequence[str], cancelled: Callable[[], bool]) -> dict | None:
    """Run the child, return its JSON; None when `cancelled()` turned true and it was stopped."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
               TOKENIZERS_PARALLELISM="false")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
        while True:
            try:
                code = proc.wait(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                if cancelled():
                    proc.kill()
                    proc.wait()
                    return None
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if code != 0:
        raise ChildError(last_error_line(stderr, code))
    try:
        return json.loads(stdout)
    except ValueError:
        lines = [line for line in stdout.splitlines() if line.strip()]
        try:
            return json.loads(lines[-1]) if lines else {}
        except ValueError:
            raise ChildError("`workbench data` printed something that is not JSON") from None
