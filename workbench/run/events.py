"""The typed events a worker appends to `events.jsonl`, one JSON object a line.

Both processes import this module, so it stays free of heavy imports. The writer
flushes each event, and begins a new line when the file ends in the middle of one (a
worker killed while writing): the next life's events are never glued to a cut line.
The reader keeps a half-written last line until it is complete, and skips (and counts,
in `skipped`) the lines that are not an event: not JSON, or a value of the wrong type
for its field. An event of a type it does not know (a newer writer's) is passed over.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import time
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Literal

from workbench.run import disk, layout


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
    """One output the model wrote at `step`, with how it was judged. RL methods send completions the
    trainer already generated: `scores` holds each reward function's weighted score, `reward` their
    total, `advantage` the trainer's advantage, `errors` the functions that raised on it (name ->
    message). DPO sends the chosen answer as `completion`, the rejected one as `rejected`, with each
    one's policy/reference log-ratio. SFT and distillation send greedy answers to held-out prompts
    with the `reference` answer. `group` ties the completions of one prompt together."""

    type: ClassVar[str] = "sample"
    step: int = 0
    prompt: str = ""
    completion: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    reward: float | None = None
    advantage: float | None = None
    errors: dict[str, str] = field(default_factory=dict)
    group: int | None = None
    rejected: str = ""
    chosen_logratio: float | None = None
    rejected_logratio: float | None = None
    reference: str = ""


@dataclass
class Error(Event):
    """The run failed; `message` is for a person, the traceback is in stderr.log."""

    type: ClassVar[str] = "error"
    message: str = ""
    kind: str = "error"  # out_of_memory | disk_full | bad_data | missing_model | bad_spec | error


@dataclass
class Finished(Event):
    """The worker is done: `reason` is completed or stopped (a training run saved a checkpoint first);
    `output` is what it produced (an adapter, a model, an export's folder)."""

    type: ClassVar[str] = "finished"
    reason: str = "completed"
    step: int = 0
    output: str = ""
    peak_memory: int = 0  # the worker's peak resident memory in bytes (run/peaks.py), 0 where unknown
    peak_gpu_memory: int = 0  # the most the CUDA allocator reserved, 0 without CUDA


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


class BadEvent(ValueError):
    """A JSON object that is no event: no type, or a field holding a value of the wrong type."""


def from_dict(data: dict[str, Any], known: dict[str, type[Event]] = EVENT_TYPES) -> Event | None:
    """The typed event, ignoring unknown keys; None for a type not in `known` (a newer writer's).
    Raises BadEvent when the object has no type or a field's value does not fit its declared type
    (ints are taken for floats, as floats; a bool is no number); a missing field takes its default."""
    kind = data.get("type")
    if not isinstance(kind, str):
        raise BadEvent(f"no event type: {kind!r}")
    cls = known.get(kind)
    if cls is None:
        return None
    hints = _field_types(cls)
    values = {}
    for name, value in data.items():
        if name not in hints:
            continue
        fits, values[name] = _fit(value, hints[name])
        if not fits:
            raise BadEvent(f"{kind}.{name} = {value!r} is not {hints[name]}")
    return cls(**values)


@functools.cache
def _field_types(cls: type[Event]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def _fit(value: Any, hint: Any) -> tuple[bool, Any]:
    """(whether `value` fits the annotation `hint`, the value as the field holds it)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            fits, fitted = _fit(value, arg)
            if fits:
                return True, fitted
        return False, value
    if hint is Any:
        return True, value
    if hint is type(None):
        return value is None, value
    if hint is float:
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return True, float(value)
            except OverflowError:
                return False, value
        return isinstance(value, float), value
    if hint in (bool, str):
        return isinstance(value, hint), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if (origin or hint) is dict:
        if not isinstance(value, dict):
            return False, value
        key_type, item_type = args or (Any, Any)
        out = {}
        for key, item in value.items():
            key_fits, _ = _fit(key, key_type)
            item_fits, out[key] = _fit(item, item_type)
            if not (key_fits and item_fits):
                return False, value
        return True, out
    if (origin or hint) is list:
        if not isinstance(value, list):
            return False, value
        item_type = args[0] if args else Any
        fitted = [_fit(item, item_type) for item in value]
        return all(fits for fits, _ in fitted), [item for _, item in fitted]
    raise TypeError(f"an event field declared as {hint!r}: the reader cannot check it")


class EventWriter:
    """Appends events to a file, one whole line each, written straight to the file. Only rank 0 should
    write.

    With `reserve`, the writer holds a few hundred KiB of disk beside the file (`disk.Reserve`): the
    first write that meets a full disk gives them back and completes its line, then raises
    `disk.DiskFull` so that the run stops while its last events (the error that ends it) still fit.
    A line is never left half-written by a full disk while the reserve lasts."""

    def __init__(self, path: Path, enabled: bool = True, reserve: bool = False):
        self.path = Path(path)
        self.enabled = enabled
        self._fd: int | None = None
        self._reserve: disk.Reserve | None = None
        self.disk_full = False  # set once a write met a full disk
        if not enabled:
            return
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if reserve:
            self._reserve = disk.Reserve(self.path.with_name(layout.SPACE_RESERVE))
        if not _ends_a_line(self.path):
            self._write(b"\n")  # the last line was cut (a writer killed mid-line): it stays alone

    def emit(self, event: Event, sync: bool = False) -> None:
        if self._fd is None:
            return
        first_full = self._write((json.dumps(event.to_dict(), default=_plain) + "\n").encode())
        if sync:
            os.fsync(self._fd)
        if first_full:
            raise disk.DiskFull(f"No space left on {disk.mount_point(self.path)} while writing the run's events "
                                f"({disk.mb(disk.free_bytes(self.path))} free)")

    def _write(self, data: bytes) -> bool:
        """Write all of `data`; True when this write was the first to meet a full disk."""
        view, first_full = memoryview(data), False
        while view:
            try:
                view = view[os.write(self._fd, view):]
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                self.disk_full = True
                if self._reserve is None or not self._reserve.release():
                    raise disk.DiskFull(f"No space left on {disk.mount_point(self.path)} for the run's events") from exc
                first_full = True
        return first_full

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._reserve is not None:
            self._reserve.drop()


def _ends_a_line(path: Path) -> bool:
    """True when the file is empty or its last byte ends a line."""
    with open(path, "rb") as f:
        if f.seek(0, os.SEEK_END) == 0:
            return True
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


class JsonlTail:
    """Reads the JSON objects appended to a file since the last call; keeps a partial last line for
    later. A complete line that holds no JSON object is skipped and counted in `skipped`."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0
        self.skipped = 0
        self._partial = b""

    def read_dicts(self) -> list[dict[str, Any]]:
        out = []
        for line in self._new_lines():
            data = _parse(line)
            if data is None:
                self.skipped += 1
            else:
                out.append(data)
        return out

    def _new_lines(self) -> list[bytes]:
        """The complete, non-blank lines appended since the last call."""
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
        return [line for line in lines if line.strip()]


class EventTail(JsonlTail):
    """Reads the events appended since the last call; a line that is no event is skipped and counted.

    A cut line that a later event was glued to (a file written before the writer began a new line
    after a cut) still yields that event: it begins where the line's last event object begins."""

    def read_new(self) -> list[Event]:
        out = []
        for line in self._new_lines():
            event = _event(line)
            if event is False:
                self.skipped += 1  # the line, or the cut part before a glued event
                glued = line.rfind(_EVENT_START)
                event = _event(line[glued:]) if glued > 0 else None
            if event:
                out.append(event)
        return out


_EVENT_START = b'{"type": "'  # how the writer begins every line (`type` is the first key)


def _event(line: bytes) -> Event | None | Literal[False]:
    """The event on a line; None for an event of a type this version does not know; False for no event."""
    data = _parse(line)
    if data is None:
        return False
    try:
        return from_dict(data)
    except BadEvent:
        return False


def _parse(line: bytes) -> dict[str, Any] | None:
    line = line.strip()
    try:
        data = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        return None
    return data if isinstance(data, dict) else None


def read_all(path: Path) -> list[Event]:
    return EventTail(path).read_new()
