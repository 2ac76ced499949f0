"""The model server: `python -m workbench.serve.server FOLDER`.

Started in its own session by `serve.launch` (it outlives the app and the SSH connection), it holds
the folder's lock, writes `pid` and a `heartbeat` (run.liveness) and its life in `events.jsonl`
(`status` while it loads, `started` once it listens, `error` or `finished` with why it ended:
asked, idle or stopped). It loads the one model `server.toml` names, keeps it warm, and answers
the clients that connect to `server.sock`, one answer at a time, streaming each token as it comes.
A client may go and come back: the server ends only when asked (`shutdown`, SIGTERM) or after
`idle_minutes` with no request.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.data.checks import ROLES
from workbench.files import read_toml
from workbench.params import ParamError
from workbench.run import events as ev
from workbench.run import layout, liveness
from workbench.serve import protocol
from workbench.serve.params import ChatParams, chat_params
from workbench.serve.protocol import ProtocolError

PARAM_KEYS = tuple(ChatParams.__dataclass_fields__)


def check_messages(value: Any) -> list[dict[str, str]]:
    """The conversation of a request: turns of known roles with text, the last one the user's."""
    if not isinstance(value, list) or not value:
        raise ProtocolError("'messages' should be a non-empty list of turns")
    for i, turn in enumerate(value):
        if not isinstance(turn, dict) or turn.get("role") not in ROLES or not isinstance(turn.get("content"), str):
            raise ProtocolError(f"turn {i} should be {{'role': system|user|assistant, 'content': text}}")
    if value[-1]["role"] != "user":
        raise ProtocolError("the last turn should be the user's: the model answers it")
    return [{"role": t["role"], "content": t["content"]} for t in value]


class Server:
    """Answers the clients of one socket with one backend; `serve()` returns why it ended."""

    def __init__(self, backend, path: Path, idle_seconds: float, hello: dict[str, Any]):
        self.backend, self.idle_seconds = backend, idle_seconds
        self.hello = {"event": "hello", "pid": os.getpid(), **hello}
        self.listener = protocol.listen(path)
        self.path = Path(path)
        self.ended = threading.Event()
        self.reason = ""
        self.answering = threading.Lock()  # one answer at a time: the model is one
        self.state = threading.Lock()
        self.active: dict[str, threading.Event] = {}  # request id -> its stop
        self.busy = 0  # requests taken and not answered yet
        self.last_request = time.monotonic()

    # the life ---------------------------------------------------------------------------

    def serve(self) -> str:
        threading.Thread(target=self._accept, name="accept", daemon=True).start()
        try:
            while not self.ended.is_set():
                with self.state:
                    left = self.idle_seconds - (time.monotonic() - self.last_request)
                    if self.busy == 0 and left <= 0:
                        self.reason = self.reason or "idle"
                        break
                self.ended.wait(max(left, 0.05) if self.busy == 0 else self.idle_seconds)
        finally:
            self.close()
        return self.reason or "stopped"

    def end(self, reason: str) -> None:
        with self.state:
            self.reason = self.reason or reason
            for stop in self.active.values():
                stop.set()
        self.ended.set()

    def close(self) -> None:
        self.ended.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        except OSError:
            pass
        try:
            self.listener.close()
        finally:
            self.path.unlink(missing_ok=True)

    def _touch(self, busy: int = 0) -> None:
        with self.state:
            self.busy += busy
            self.last_request = time.monotonic()

    # the clients ------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self.ended.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed: the server is ending
            threading.Thread(target=self._client, args=(conn,), name="client", daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        lock = threading.Lock()
        mine: set[str] = set()

        def send(message: dict[str, Any]) -> bool:
            try:
                with lock:
                    conn.sendall(protocol.encode(message))
                return True
            except OSError:
                return False  # the client went away; its answers stop, the server stays

        try:
            send(self.hello)
            for message in protocol.read_lines(conn.makefile("rb")):
                if not self._take(message, send, mine):
                    break
        except (OSError, ProtocolError) as exc:
            send({"event": "error", "id": "", "message": f"Bad request: {exc}"})
        finally:
            with self.state:
                for request_id in mine:
                    if request_id in self.active:
                        self.active[request_id].set()
            conn.close()

    def _take(self, message: dict[str, Any], send: Callable[[dict], bool], mine: set[str]) -> bool:
        """Act on one request; False once the client asked the server to end."""
        op, request_id = message.get("op"), str(message.get("id") or uuid.uuid4().hex[:8])
        if op == "generate":
            stop = threading.Event()
            with self.state:
                self.active[request_id] = stop
                mine.add(request_id)
            self._touch(busy=1)
            threading.Thread(target=self._answer, args=(request_id, message, stop, send), name="answer",
                             daemon=True).start()
        elif op == "stop":
            with self.state:
                stop = self.active.get(request_id)
            if stop is not None:
                stop.set()
        elif op == "shutdown":
            send({"event": "bye"})
            self.end("asked")
            return False
        else:
            send({"event": "error", "id": request_id, "message": f"Unknown request {op!r}: generate, stop or shutdown."})
        return True

    def _answer(self, request_id: str, message: dict[str, Any], stop: threading.Event, send) -> None:
        try:
            messages = check_messages(message.get("messages"))
            params = chat_params({k: message[k] for k in PARAM_KEYS if k in message})
            with self.answering:
                self._touch()
                started, first, parts = time.perf_counter(), None, []

                def on_text(text: str) -> None:
                    nonlocal first
                    first = first if first is not None else time.perf_counter() - started
                    parts.append(text)
                    if not send({"event": "token", "id": request_id, "text": text}):
                        stop.set()

                reason, tokens = ("stopped", 0) if stop.is_set() else self.backend.generate(
                    messages, params, stop, on_text)
                seconds = time.perf_counter() - started
            after_first = seconds - (first or 0.0)
            send({"event": "done", "id": request_id, "reason": reason, "text": "".join(parts), "tokens": tokens,
                  "first_token_s": round(first, 4) if first is not None else None, "seconds": round(seconds, 4),
                  "tokens_per_s": round((tokens - 1) / after_first, 2) if tokens > 1 and after_first > 0 else None})
        except (ProtocolError, ParamError) as exc:
            send({"event": "error", "id": request_id, "message": f"Bad request: {exc}"})
        except Exception as exc:  # noqa: BLE001 - the client shows it; the server stays up
            traceback.print_exc(file=sys.stderr)
            send({"event": "error", "id": request_id, "message": f"{type(exc).__name__}: {exc}".splitlines()[0]})
        finally:
            with self.state:
                self.active.pop(request_id, None)
            self._touch(busy=-1)


# the process ----------------------------------------------------------------------------


class Ended(BaseException):
    """SIGTERM or SIGINT while the model loads: nothing to finish, the process ends."""


def run(folder: Path) -> int:
    from workbench.jobs.errors import humanize
    from workbench.serve import backends

    folder = Path(folder).resolve()
    try:
        lock = liveness.hold(folder)
    except liveness.Held as held:
        print(f"Another server (pid {held.pid}) serves {folder}; this one exits.", file=sys.stderr)
        return 3
    writer = ev.EventWriter(folder / layout.EVENTS)
    beat = liveness.announce(folder)
    server: Server | None = None

    def on_signal(*_) -> None:
        if server is None:
            raise Ended()
        server.end("stopped")

    try:
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})  # the launcher held them
        config = read_toml(folder / protocol.CONFIG)["server"]
        threads = int(config["threads"])
        backend = backends.load(config["kind"], config["base"], threads,
                                lambda message: writer.emit(ev.Status(message=message)))
        server = Server(backend, protocol.socket_path(folder), float(config["idle_minutes"]) * 60,
                        {"model": config["label"], "ref": config["ref"], "backend": backend.kind})
        writer.emit(ev.Started(pid=os.getpid(), method="serve"), sync=True)
        reason = server.serve()
        writer.emit(ev.Finished(reason=reason), sync=True)
        return 0
    except Ended:
        writer.emit(ev.Finished(reason="stopped"), sync=True)
        return 0
    except BaseException as exc:  # noqa: BLE001 - the launcher shows the message
        traceback.print_exc(file=sys.stderr)
        kind, message = humanize(exc)
        writer.emit(ev.Error(message=message, kind=kind), sync=True)
        return 1
    finally:
        beat.set()
        protocol.socket_path(folder).unlink(missing_ok=True)
        sys.stderr.flush()
        writer.close()
        lock.release()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        print("usage: python -m workbench.serve.server FOLDER", file=sys.stderr)
        return 2
    return run(Path(argv[0]))


if __name__ == "__main__":
    sys.exit(main())
