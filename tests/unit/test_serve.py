"""The model server's protocol, with a scripted backend in this process: streaming, stop, a client that
goes and comes back, the idle end; the checks made before anything loads; what the playground keeps."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from workbench import locations
from workbench import project as projects
from workbench.data import kinds
from workbench.data.importer import read_records
from workbench.serve import conversations, launch, protocol
from workbench.serve.client import Client
from workbench.serve.params import ChatParams, chat_params
from workbench.serve.protocol import ServeError
from workbench.serve.server import Server

HI = [{"role": "user", "content": "Hi"}]


class ScriptedBackend:
    """Answers `<name> says <words of the last user turn> (seed S, answer N)`, a word a token. With a
    `gate`, each token waits for a release, so a test sees the answer mid-stream."""

    kind = "scripted"

    def __init__(self, name: str, gate: threading.Semaphore | None = None):
        self.name, self.gate, self.answers = name, gate, 0
        self.seen: list[list[dict]] = []

    def generate(self, messages, p, stop, on_text):
        self.answers += 1
        self.seen.append((messages, p))
        words = [self.name, "says", *messages[-1]["content"].split(), f"(seed {p.seed}, answer {self.answers})"]
        words = words[:p.max_new_tokens]
        for i, word in enumerate(words):
            if self.gate is not None:
                while not self.gate.acquire(timeout=0.05):
                    if stop.is_set():
                        return "stopped", i
            if stop.is_set():
                return "stopped", i
            on_text(("" if i == 0 else " ") + word)
        return ("length" if len(words) == p.max_new_tokens else "stop"), len(words)


class FakeServer:
    """A real `Server` on a real socket, in a thread of this process, answering with a ScriptedBackend."""

    def __init__(self, folder: Path, name: str, idle_seconds: float = 60, gate=None):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.backend = folder, ScriptedBackend(name, gate)
        self.server = Server(self.backend, protocol.socket_path(folder), idle_seconds,
                             {"model": name, "ref": name, "backend": "scripted"})
        self.reason = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.reason = self.server.serve()

    def end(self):
        self.server.end("asked")
        self.thread.join(10)


@pytest.fixture
def fake(tmp_path):
    servers = []

    def start(name="alpha", **kwargs) -> FakeServer:
        server = FakeServer(tmp_path / "servers" / name, name, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.end()


def test_an_answer_streams_token_by_token_and_ends_with_its_figures(fake):
    server = fake("alpha")
    with Client(server.folder) as client:
        assert client.hello["model"] == "alpha" and client.hello["backend"] == "scripted"
        tokens = []
        done = client.ask(HI, chat_params({"seed": 7}), on_text=tokens.append)
    assert tokens == ["alpha", " says", " Hi", " (seed 7, answer 1)"]
    assert done["text"] == "alpha says Hi (seed 7, answer 1)" and done["reason"] == "stop" and done["tokens"] == 4
    assert done["first_token_s"] is not None and done["seconds"] >= done["first_token_s"]


def test_the_system_prompt_and_the_params_reach_the_backend_checked(fake):
    server = fake("alpha")
    with Client(server.folder) as client:
        done = client.ask(HI, chat_params({"max_new_tokens": 2, "system": "Be brief."}))
        assert done["reason"] == "length" and done["text"] == "alpha says"
        assert server.backend.seen[-1][1].system == "Be brief."
        with pytest.raises(ServeError, match=r"Bad request: temperature: -1.0 is below the minimum 0"):
            list(client.generate(HI, ChatParams(temperature=-1.0)))
        with pytest.raises(ServeError, match="the last turn should be the user's"):
            list(client.generate(HI + [{"role": "assistant", "content": "Hello"}], chat_params()))


def test_stop_ends_an_answer_mid_stream_and_the_server_answers_the_next(fake):
    gate = threading.Semaphore(0)
    server = fake("alpha", gate=gate)
    with Client(server.folder) as client:
        events = client.generate(HI, chat_params(), "r1")
        gate.release()
        assert next(events) == {"event": "token", "id": "r1", "text": "alpha"}
        client.stop("r1")
        done = next(events)
        assert done["event"] == "done" and done["reason"] == "stopped" and done["text"] == "alpha"
        for _ in range(10):
            gate.release()
        assert client.ask(HI, chat_params())["text"].startswith("alpha says Hi")


def test_a_client_that_goes_away_mid_answer_leaves_the_server_serving(fake):
    gate = threading.Semaphore(0)
    server = fake("alpha", gate=gate)
    client = Client(server.folder)
    events = client.generate(HI, chat_params(), "r1")
    gate.release()
    assert next(events)["text"] == "alpha"
    client.close()  # the app quit, or the SSH connection dropped
    for _ in range(20):
        gate.release()
    with Client(server.folder) as again:
        assert again.hello["pid"] == client.hello["pid"]
        done = again.ask(HI, chat_params())
    assert done["reason"] == "stop" and "answer 2" in done["text"]  # the same warm model: its second answer


def test_a_server_nobody_asks_ends_after_its_idle_time_and_shutdown_ends_it_at_once(fake):
    idle = fake("idle", idle_seconds=0.3)
    with Client(idle.folder) as client:
        client.ask(HI, chat_params())
    idle.thread.join(10)
    assert idle.reason == "idle" and not protocol.socket_path(idle.folder).exists()

    asked = fake("asked")
    Client(asked.folder).shutdown()
    asked.thread.join(10)
    assert asked.reason == "asked"
    with pytest.raises(ServeError, match="No model server listens"):
        Client(asked.folder)


def test_a_socket_path_too_long_for_the_kernel_still_works(tmp_path):
    folder = tmp_path / ("deep-" * 30)
    server = FakeServer(folder, "deep")
    try:
        assert len(str(protocol.socket_path(folder))) > 108
        with Client(folder) as client:
            assert client.ask(HI, chat_params())["text"].startswith("deep says")
    finally:
        server.end()


# what is checked before anything loads ---------------------------------------------------------


def test_bad_model_refs_are_refused_in_one_line_before_anything_loads(home, tmp_path):
    projects.create("p")
    cases = {
        "run:nope": "Project 'p' has no run 'nope'.",
        str(tmp_path / "missing"): "does not exist",
        "run:nope/checkpoint-3": "has no complete checkpoint",
    }
    for ref, expected in cases.items():
        with pytest.raises(ServeError, match=expected) as err:
            launch.prepare("p", ref)
        assert "\n" not in str(err.value)
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(ServeError, match=r"llama.cpp cannot load model.gguf: it is not a GGUF file"):
        launch.prepare("p", str(not_gguf))
    assert not (locations.playground_dir("p")).exists()  # nothing started, nothing written


# what the playground keeps -------------------------------------------------------------------


def conversation(answer: str) -> list[dict]:
    return [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": answer}]


def test_a_preference_pair_and_an_example_become_datasets_the_methods_read(home):
    projects.create("p")
    assert conversations.save_pair("p", "Be brief.", conversation("Blue."), conversation("I like pizza.")) == 1
    assert conversations.save_pair("p", "", conversation("Red."), conversation("Blue.")) == 2
    project = projects.load("p")
    entry = project.dataset(conversations.PAIRS_DATASET)
    assert entry.kind == "preference" and entry.records == 2
    first, second = read_records(project.dataset_path(conversations.PAIRS_DATASET))
    assert first["prompt"][0] == {"role": "system", "content": "Be brief."}
    assert first["prompt"][-1] == {"role": "user", "content": "Name a colour."} and len(first["prompt"]) == 4
    assert (first["chosen"], first["rejected"]) == ("Blue.", "I like pizza.")
    assert second["prompt"][0]["role"] == "user"

    assert kinds.detect(first) == "preference" and kinds.normalise(first, "preference") == first  # as DPO reads it

    assert conversations.save_example("p", "", conversation("Blue."), "Blue, like the sky.") == 1
    example = read_records(projects.load("p").dataset_path(conversations.SFT_DATASET))[0]
    assert example["messages"][-1] == {"role": "assistant", "content": "Blue, like the sky."}
    assert projects.load("p").dataset(conversations.SFT_DATASET).kind == "chat"


def test_pairs_that_teach_nothing_are_refused(home):
    projects.create("p")
    with pytest.raises(ValueError, match="Both answers are the same"):
        conversations.save_pair("p", "", conversation("Blue."), conversation("Blue."))
    with pytest.raises(ValueError, match="no answer to keep yet"):
        conversations.save_pair("p", "", conversation("Blue.")[:-1], conversation("Red."))
    assert not (locations.project_dir("p") / "datasets" / f"{conversations.PAIRS_DATASET}.jsonl").exists()


def test_a_conversation_is_saved_whole_in_the_project(home):
    projects.create("p")
    path = conversations.save("p", "20250101-000000", chat_params({"seed": 3}),
                              [{"model": "base", "messages": conversation("Blue.")}], created=1.0)
    assert path.parent == locations.playground_dir("p") / "conversations"
    data = json.loads(path.read_text())
    assert data["params"]["seed"] == 3 and data["created"] == 1.0 and data["panes"][0]["messages"][-1]["content"] == "Blue."
    assert conversations.list_ids("p") == ["20250101-000000"]
