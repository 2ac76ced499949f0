"""A client of one model server: ask, stream the answer, stop it, end the server. Light: standard library only.

Safe to share between two threads the way the playground does: one reads an answer's events while
another sends `stop`.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

from workbench.run import layout
from workbench.serve import protocol
from workbench.serve.params import ChatParams
from workbench.serve.protocol import ServeError


class Client:
    """Connected to the server in `folder`; `hello` is what it serves ({model, ref, backend, pid})."""

    def __init__(self, folder: Path, timeout: float = 5.0):
        self.folder = Path(folder)
        self.hello: dict[str, Any] = {}
        try:
            self.sock = protocol.connect(protocol.socket_path(folder), timeout)
        except OSError as exc:
            raise ServeError(f"No model server listens in {folder} ({exc.strerror or exc}).") from None
        self._events = protocol.read_lines(self.sock.makefile("rb"))
        self._send_lock = threading.Lock()
        self.hello = self._next()
        if self.hello.get("event") != "hello":
            raise ServeError(f"The server in {folder} did not greet: {self.hello}")

    @property
    def label(self) -> str:
        return str(self.hello.get("model", "?"))

    def _next(self) -> dict[str, Any]:
        try:
            return next(self._events)
        except (StopIteration, OSError):
            raise ServeError(f"The model server of {self.hello.get('model', self.folder)} went away "
                             f"(see {self.folder / layout.STDERR}).") from None

    def send(self, message: dict[str, Any]) -> None:
        try:
            with self._send_lock:
                self.sock.sendall(protocol.encode(message))
        except OSError as exc:
            raise ServeError(f"The model server of {self.label} went away ({exc.strerror or exc}).") from None

    def generate(self, messages: list[dict[str, str]], params: ChatParams,
                 request_id: str | None = None) -> Iterator[dict[str, Any]]:
        """The events of one answer: `token`s, then `done` (or `error`, raised as ServeError)."""
        request_id = request_id or uuid.uuid4().hex[:8]
        self.send({"op": "generate", "id": request_id, "messages": messages, **params.to_dict()})
        while True:
            event = self._next()
            if event.get("id") not in (request_id, ""):
                continue  # an earlier answer's late events
            if event.get("event") == "error":
                raise ServeError(str(event.get("message", "the server failed")))
            yield event
            if event.get("event") == "done":
                return

    def ask(self, messages: list[dict[str, str]], params: ChatParams,
            on_text: Callable[[str], None] | None = None) -> dict[str, Any]:
        """The `done` event of one answer, `on_text` called with each token's text as it comes."""
        for event in self.generate(messages, params):
            if event["event"] == "token" and on_text is not None:
                on_text(event["text"])
            elif event["event"] == "done":
                return event
        raise ServeError("The answer ended without a result.")

    def stop(self, request_id: str) -> None:
        self.send({"op": "stop", "id": request_id})

    def shutdown(self) -> None:
        """Ask the server to end; returns once it said goodbye (or had already gone)."""
        try:
            self.send({"op": "shutdown"})
            while self._next().get("event") != "bye":
                pass
        except ServeError:
            pass
        finally:
            self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
