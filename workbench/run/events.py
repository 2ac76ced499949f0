"""The typed events a worker appends to `events.jsonl`, one JSON object a line.

Both processes import this module, so it stays free of heavy imports. The writer
flushes each event; the reader tolerates a half-written last line (the worker may be
in the middle of writing it, or may have died there).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar


@dataclass
class Event:
    type: ClassVar[str] = "event"
    time: float = field(default_factory=time.time, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **asdict(self)}


@dataclass
class Started(Event):
    """The worker is up; `resumed_from` names the checkpoint when resuming."""

    type: ClassVar[str] = "started"
    pid: int = 0
    method: str = ""
    resumed_from: str | None = None


@dataclass
class Status(Event):
    """A phase the person should know about (loading the model, preparing data...)."""

    type: ClassVar[str] = "status"
    message: str = ""
    progress: float | None = None  # 0..1 when known


@dataclass
class TrainBegin(Event):
    type: ClassVar[str] = "train_begin"
    total_steps: int = 0
    trainable_params: int = 0
    total_params: int = 0
    train_records: int = 0
    eval_records: int = 0
    device: str = "cpu"


@dataclass
class Log(Event):
    type: ClassVar[str] = "log"
    step: int = 0
    total_steps: int = 0
    epoch: float = 0.0
    loss: float | None = None
    lr: float | None = None
    grad_norm: float | None = None
    tokens_per_s: float | None = None
    tokens_seen: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Eval(Event):
    type: ClassVar[str] = "eval"
    step: int = 0
    loss: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Checkpoint(Event):
    type: ClassVar[str] = "checkpoint"
    step: int = 0
    path: str = ""


@dataclass
class Sample(Event):
    type: ClassVar[str] = "sample"
    step: int = 0
    prompt: str = ""
    completion: str = ""


@dataclass
class Error(Event):
    """The run failed; `message` is for a person, the traceback is in stderr.log."""

    type: ClassVar[str] = "error"
    message: str = ""
    kind: str = "error"  # out_of_memory | bad_data | missing_model | bad_spec | error


@dataclass
class Finished(Event):
    """The worker is done: `reason` is completed or stopped (a training run saved a checkpoint first);
    `output` is what it produced (an adapter, a model, an export's folder)."""

    type: ClassVar[str] = "finished"
    reason: str = "completed"
    step: int = 0
    output: str = ""


@dataclass
class Artifact(Event):
    """A file or folder a job wrote (`verification` empty), or its verification (`passed` set, `report`
    the file that holds it); a job that verifies what it wrote sends both, with the same `path`."""

    type: ClassVar[str] = "artifact"
    path: str = ""
    size: int = 0  # bytes on disk
    verification: str = ""  # one line for a person
    passed: bool | None = None
    report: str = ""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls for cls in (Started, Status, TrainBegin, Log, Eval, Checkpoint, Sample, Artifact, Error, Finished)
}


def from_dict(data: dict[str, Any]) -> Event | None:
    """Build the typed event, ignoring unknown keys; None for an unknown type."""
    cls = EVENT_TYPES.get(data.get("type", ""))
    if cls is None:
        return None
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


class EventWriter:
    """Appends events to a file, one flushed line each. Only rank 0 should write."""

    def __init__(self, path: Path, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        self._file = open(self.path, "a", encoding="utf-8") if enabled else None

    def emit(self, event: Event, sync: bool = False) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(event.to_dict(), default=_plain) + "\n")
        self._file.flush()
        if sync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


class JsonlTail:
    """Reads the JSON objects appended to a file since the last call; keeps a partial last line for later."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0
        self._partial = b""

    def read_dicts(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()  # b"" when the chunk ended on a newline
        return [d for d in (_parse(line) for line in lines) if d is not None]


class EventTail(JsonlTail):
    """Reads the events appended since the last call."""

    def read_new(self) -> list[Event]:
        return [e for e in (from_dict(d) for d in self.read_dicts()) if e is not None]


def _parse(line: bytes) -> dict[str, Any] | None:
    line = line.strip()
    if not line:
        return None
    try:
        data = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def read_all(path: Path) -> list[Event]:
    return EventTail(path).read_new()
