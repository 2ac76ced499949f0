"""What the playground's model server and its clients say to each other: JSON lines over a Unix socket.

A client sends one request a line:
  {"op": "generate", "id", "messages": [{"role", "content"}...], "system", "temperature", "top_p",
   "max_new_tokens", "seed"}        answer the conversation (its last turn is the user's)
  {"op": "stop", "id"}              end that answer now (what was written so far is kept)
  {"op": "shutdown"}                end the server
The server answers with one event a line: `hello` (on connecting: the model and how it is served),
`token` (`text`, as it comes), `done` (`reason` stop | length | stopped, `text`, `tokens`,
`first_token_s`, `seconds`), `error` (`message`, one line for a person) and `bye`.

A socket's path may hold at most 107 bytes, and a project's folder can be deeper than that: the
path goes through `/proc/self/fd/<the folder>` when it is too long. Light: standard library only.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SOCKET = "server.sock"  # in the server's folder
CONFIG = "server.toml"  # what the server serves: written by the launcher, read by the server
MAX_LINE = 8 * 1024 * 1024  # a request or event longer than this is refused
REASONS = ("stop", "length", "stopped")
_SUN_PATH_MAX = 100  # sockaddr_un holds 108 bytes; keep a margin


class ServeError(RuntimeError):
    """A model that cannot be served, or a server that went away; the message says why, for a person."""

    kind = "serve"


class ProtocolError(ValueError):
    """A line that is no request or event of this protocol."""


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode("utf-8") + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        raise ProtocolError(f"not JSON: {line[:80]!r}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"not a JSON object: {line[:80]!r}")
    return message


def read_lines(stream) -> Iterator[dict[str, Any]]:
    """The messages of a binary stream, one a line, until it ends."""
    while True:
        line = stream.readline(MAX_LINE + 1)
        if not line:
            return
        if len(line) > MAX_LINE:
            raise ProtocolError(f"a line longer than {MAX_LINE} bytes")
        if line.strip():
            yield decode(line)


def socket_path(folder: Path) -> Path:
    return Path(folder) / SOCKET


@contextlib.contextmanager
def short_path(path: Path) -> Iterator[str]:
    """A name for `path` that fits in a socket address: itself, or through the open folder's fd."""
    path = Path(path)
    if len(os.fsencode(str(path))) <= _SUN_PATH_MAX:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def listen(path: Path) -> socket.socket:
    """A listening socket at `path` (one left by an earlier server is replaced)."""
    Path(path).unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with short_path(path) as name:
        server.bind(name)
    os.chmod(path, 0o600)  # the model answers its owner only
    server.listen(8)
    return server


def connect(path: Path, timeout: float | None = 5.0) -> socket.socket:
    """A socket connected to the server at `path`; OSError (ConnectionRefusedError, FileNotFoundError)
    when none listens there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        with short_path(path) as name:
            sock.connect(name)
    except BaseException:
        sock.close()
        raise
    sock.settimeout(None)
    return sock
