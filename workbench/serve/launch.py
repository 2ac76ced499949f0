"""Start (or find) the server of one model, detached, and wait until it listens.

A model is named the way a person names it (run.model_refs): `base`, `run:<id>`,
`run:<id>/checkpoint-N`, or a path, a `.gguf` file among them (an exported GGUF is served by
llama.cpp, anything else by transformers). `prepare` checks the name and the files before
anything loads, and says in one line what is wrong. Each model has its folder in the project's
playground (`servers/<name>/`: server.toml, server.sock, events.jsonl, stderr.log, lock, pid,
heartbeat); a server already warm there is reused, which is how the app finds its models again
after it was closed or the connection dropped.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from workbench import locations, models
from workbench.files import write_toml
from workbench.jobs import store
from workbench.jobs.launch import spawn_detached
from workbench.run import events as ev
from workbench.run import layout, liveness
from workbench.run.model_refs import RefError, resolve_ref
from workbench.serve import protocol
from workbench.serve.client import Client
from workbench.serve.protocol import ServeError

IDLE_MINUTES = 15.0  # a server nobody asks anything for this long ends (frees its memory)
START_TIMEOUT = 900.0  # seconds: the first use of the embedded model converts it (a minute or two)
SERVERS = "servers"  # in the project's playground folder

Status = Callable[[str], None]


@dataclass(frozen=True)
class Target:
    """A model ready to serve: the ref a person gave, what it resolves to, and how it is served."""

    project: str
    ref: str
    base: str  # `default` or an absolute path (a model or adapter folder, a .gguf file)
    kind: str  # "gguf" (llama.cpp) or "hf" (transformers)
    label: str


def prepare(project: str, ref: str) -> Target:
    """The target of `ref`, checked from its name and files alone; ServeError (one line) when it cannot serve."""
    try:
        base = resolve_ref(project, ref)
        found = models.check(base)
    except (RefError, models.ModelError, ValueError) as exc:
        raise ServeError(str(exc)) from None
    if found == "gguf":
        check_gguf(Path(base))
    label = models.describe(base)
    return Target(project, ref.strip() or "base", base, "gguf" if found == "gguf" else "hf", label)


def check_gguf(path: Path) -> None:
    """That llama.cpp can read `path`: a GGUF header, metadata and every tensor's bytes within the file."""
    name = Path(path).name
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise ServeError(f"llama.cpp cannot load {name}: it is not a GGUF file (it begins with {magic!r}, not b'GGUF').")
    from gguf import GGUFReader

    try:
        reader = GGUFReader(path)
        end = max((t.data_offset + int(t.n_bytes) for t in reader.tensors), default=0)
    except Exception as exc:  # noqa: BLE001 - any parse failure means llama.cpp will refuse it too
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ServeError(f"llama.cpp cannot load {name}: the file is damaged or cut short ({detail}). "
                         "Export it again.") from None
    size = Path(path).stat().st_size
    if not reader.tensors or end > size:
        raise ServeError(f"llama.cpp cannot load {name}: the file is cut short ({size} bytes of the {end} its "
                         "tensors need). Export it again.")


def server_dir(target: Target) -> Path:
    """`<project>/playground/servers/<ref>-<hash of what it resolves to>`."""
    name = target.ref if target.ref.startswith("run:") or "/" not in target.ref else Path(target.ref).name
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:48] or "server"
    key = hashlib.sha1(f"{target.kind}:{target.base}".encode()).hexdigest()[:8]
    return locations.playground_dir(target.project) / SERVERS / f"{readable}-{key}"


@dataclass
class Handle:
    """A server that listens: its folder, and its process when this process started it."""

    target: Target
    folder: Path
    proc: subprocess.Popen | None = None

    def connect(self, timeout: float = 5.0) -> Client:
        return Client(self.folder, timeout)


def default_threads() -> int:
    """Two panes share the cores: each server takes half."""
    return max(1, (os.cpu_count() or 2) // 2)


def start(project: str, ref: str, idle_minutes: float = IDLE_MINUTES, threads: int | None = None,
          status: Status | None = None, timeout: float = START_TIMEOUT) -> Handle:
    """The server of `ref`, started if none is alive in its folder; returns once it listens."""
    status = status or (lambda message: None)
    target = prepare(project, ref)
    folder = server_dir(target)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        lock = liveness.claim(folder)
    except liveness.Held:  # warm already, or loading for another caller: wait for it
        wait_ready(folder, None, status, timeout)
        return Handle(target, folder)
    with lock:
        for name in (layout.EVENTS, protocol.SOCKET):
            (folder / name).unlink(missing_ok=True)  # an earlier life's
        threads = threads or default_threads()
        write_toml(folder / protocol.CONFIG, {"server": {
            "project": project, "ref": target.ref, "base": target.base, "kind": target.kind, "label": target.label,
            "threads": threads, "idle_minutes": idle_minutes}})
        env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        env.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        proc = spawn_detached([sys.executable, "-m", "workbench.serve.server", str(folder)], folder, env, lock)
    status(f"Starting the server of {target.label}")
    wait_ready(folder, proc, status, timeout)
    return Handle(target, folder, proc)


def wait_ready(folder: Path, proc: subprocess.Popen | None, status: Status, timeout: float) -> None:
    """Return once the server in `folder` listens; ServeError with its message when it failed or ended."""
    tail = ev.EventTail(Path(folder) / layout.EVENTS)
    deadline = time.monotonic() + timeout
    while True:
        gone = (proc.poll() is not None) if proc is not None else not liveness.is_alive(folder)
        for event in tail.read_new():
            if isinstance(event, ev.Status):
                status(event.message)
            elif isinstance(event, ev.Started):
                return
            elif isinstance(event, ev.Error):
                raise ServeError(event.message)
            elif isinstance(event, ev.Finished):
                raise ServeError(f"The server in {folder} ended ({event.reason}) before it listened.")
        if gone:
            log = (Path(folder) / layout.STDERR).read_text(errors="replace").strip().splitlines()
            raise ServeError(f"The model server exited at once: {log[-1] if log else 'no output'}")
        if time.monotonic() > deadline:
            raise ServeError(f"The model server did not start within {timeout:.0f} s (see {folder / layout.STDERR}).")
        time.sleep(0.05)


def end(folder: Path) -> bool:
    """Ask the server in `folder` to end (a SIGTERM when it does not answer); False when none was alive."""
    if not liveness.is_alive(folder):
        return False
    try:
        Client(folder, timeout=2.0).shutdown()
        return True
    except ServeError:
        pass
    try:
        store.signal_holder(folder, "The model server")
    except store.RunError:
        pass  # it ended meanwhile
    return True
