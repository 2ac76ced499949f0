"""The playground screen, driven with Pilot against scripted model servers (a real `Server` and socket in
this process, tests/unit/test_serve.py): two panes stream, regenerate asks again, stop ends an answer,
prefer left writes a pair, save as SFT writes an example, closing the screen ends its servers. The real
servers (transformers and llama.cpp, detached) are exercised in tests/e2e/test_serve.py."""

from __future__ import annotations

import threading
import time

from textual.app import App
from textual.widgets import Input

from screens.playground import PlaygroundScreen, Servers
from screens.widgets.chat_pane import ChatPane
from tests.unit.test_serve import FakeServer
from workbench import project as projects
from workbench.data.importer import read_records
from workbench.jobs.store import ModelChoice
from workbench.serve import conversations
from workbench.serve.client import Client
from workbench.serve.protocol import ServeError

SIZE = (120, 36)
CHOICES = [ModelChoice("base", "base model"), ModelChoice("run:r1", "r1 (sft, final)")]


class FakeServers:
    """Scripted servers, one per model, started when a pane picks it; records what the screen ends."""

    def __init__(self, folder, gated: bool = False):
        self.folder, self.gated = folder, gated  # gated: each token waits for `release`
        self.started: dict[str, FakeServer] = {}
        self.ended: list[str] = []

    def open(self, project, ref, status):
        status(f"Loading {ref}")
        if ref == "run:broken":
            raise ServeError("llama.cpp cannot load broken.gguf: it is not a GGUF file.")
        server = self.started.get(ref) or FakeServer(self.folder / ref.replace(":", "-"), ref.upper(),
                                                         gate=threading.Semaphore(0) if self.gated else None)
        self.started[ref] = server
        return Client(server.folder)

    def end(self, client):
        self.ended.append(client.label)
        for server in self.started.values():
            if server.folder == client.folder:
                server.end()

    def release(self, tokens: int) -> None:
        """Let each server write `tokens` more tokens."""
        for server in self.started.values():
            server.backend.gate.release(tokens)

    def servers(self, choices=CHOICES) -> Servers:
        return Servers(choices=lambda project: choices + [ModelChoice("run:broken", "broken")], open=self.open,
                       end=self.end)

    def close(self):
        for server in self.started.values():
            server.end()


class PlaygroundApp(App):
    def __init__(self, servers: Servers) -> None:
        super().__init__()
        self.servers = servers

    def on_mount(self) -> None:
        self.push_screen(PlaygroundScreen("p", self.servers))


async def wait_until(pilot, predicate, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def panes(app) -> tuple[ChatPane, ChatPane]:
    return app.screen.query_one("#left", ChatPane), app.screen.query_one("#right", ChatPane)


async def two_models(pilot, app):
    """The left pane starts on the base model; pick the run on the right; wait for both servers."""
    left, right = panes(app)
    await wait_until(pilot, lambda: 0 in app.screen.clients, "the base model")
    right.query_one("Select").value = "run:r1"
    await wait_until(pilot, lambda: 1 in app.screen.clients, "the run's model")
    return left, right


async def send(pilot, app, text: str):
    app.screen.query_one("#message", Input).value = text
    app.screen.query_one("#message", Input).focus()
    await pilot.press("enter")


def answers(pane: ChatPane) -> list[str]:
    return [m["content"] for m in pane.messages if m["role"] == "assistant"]


async def test_a_message_streams_into_both_panes_and_regenerate_asks_again(home, tmp_path):
    projects.create("p")
    fakes = FakeServers(tmp_path, gated=True)
    app = PlaygroundApp(fakes.servers())
    try:
        async with app.run_test(size=SIZE) as pilot:
            left, right = await two_models(pilot, app)
            await send(pilot, app, "Hello there")
            fakes.release(1)
            await wait_until(pilot, lambda: left._text == "BASE" and right._text == "RUN:R1", "the first tokens")
            assert left.answering and right.answering and left.messages[-1]["role"] != "assistant"
            fakes.release(100)
            await wait_until(pilot, lambda: not left.answering and not right.answering, "both answers")
            assert answers(left) == ["BASE says Hello there (seed 0, answer 1)"]
            assert answers(right) == ["RUN:R1 says Hello there (seed 0, answer 1)"]
            assert "5 tokens" in str(left.query_one(".pane-status").render())

            await pilot.press("ctrl+r")
            await wait_until(pilot, lambda: not left.answering and not right.answering and
                             len(answers(left)) == 1 and "answer 2" in answers(left)[0], "the regenerated answers")
            assert answers(left) == ["BASE says Hello there (seed 1, answer 2)"]  # replaced, with the next seed
            assert len(left.messages) == 2 and len(right.messages) == 2

            await send(pilot, app, "And then?")  # a second turn sees the whole conversation
            await wait_until(pilot, lambda: len(answers(right)) == 2 and not right.answering, "the second turn")
            sent = fakes.started["run:r1"].backend.seen[-1][0]
            assert [m["content"] for m in sent] == ["Hello there", "RUN:R1 says Hello there (seed 1, answer 2)",
                                                   "And then?"]
            saved = conversations.load("p", app.screen.conversation)
            assert [p["model"] for p in saved["panes"]] == ["base", "run:r1"] and len(saved["panes"][1]["messages"]) == 4
    finally:
        fakes.close()


async def test_stop_ends_both_answers_where_they_are(home, tmp_path):
    projects.create("p")
    fakes = FakeServers(tmp_path, gated=True)
    app = PlaygroundApp(fakes.servers())
    try:
        async with app.run_test(size=SIZE) as pilot:
            left, right = await two_models(pilot, app)
            await send(pilot, app, "Tell me a long story")
            fakes.release(1)
            await wait_until(pilot, lambda: left._text and right._text, "the first tokens")
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: not left.answering and not right.answering, "the stop")
            assert answers(left) == ["BASE"] and answers(right) == ["RUN:R1"]
            assert "stopped" in str(left.query_one(".pane-status").render())
    finally:
        fakes.close()


async def test_prefer_left_writes_a_pair_and_both_panes_go_on_from_it(home, tmp_path):
    projects.create("p")
    fakes = FakeServers(tmp_path)
    app = PlaygroundApp(fakes.servers())
    try:
        async with app.run_test(size=SIZE) as pilot:
            left, right = await two_models(pilot, app)
            app.screen.query_one("#system", Input).value = "Be brief."
            await send(pilot, app, "Name a colour")
            await wait_until(pilot, lambda: answers(left) and answers(right), "both answers")
            await pilot.press("f2")  # prefer left
            await pilot.pause()
            pairs = read_records(projects.load("p").dataset_path(conversations.PAIRS_DATASET))
            assert pairs == [{"prompt": [{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": "Name a colour"}],
                              "chosen": "BASE says Name a colour (seed 0, answer 1)",
                              "rejected": "RUN:R1 says Name a colour (seed 0, answer 1)"}]
            assert answers(right) == answers(left)  # the next turn's pair shares its prompt

            await pilot.press("f4")  # save as SFT example: the focused pane's answer, edited
            await wait_until(pilot, lambda: app.screen.__class__.__name__ == "EditAnswerScreen", "the editor")
            app.screen.query_one("TextArea").text = "Blue."
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: isinstance(app.screen, PlaygroundScreen), "back from the editor")
            example = read_records(projects.load("p").dataset_path(conversations.SFT_DATASET))
            assert example == [{"messages": [{"role": "system", "content": "Be brief."},
                                             {"role": "user", "content": "Name a colour"},
                                             {"role": "assistant", "content": "Blue."}]}]
            assert answers(left) == ["Blue."]
    finally:
        fakes.close()


async def test_a_model_that_cannot_load_says_why_and_closing_ends_the_servers(home, tmp_path):
    projects.create("p")
    fakes = FakeServers(tmp_path)
    app = PlaygroundApp(fakes.servers())
    try:
        async with app.run_test(size=SIZE) as pilot:
            right = panes(app)[1]
            await wait_until(pilot, lambda: 0 in app.screen.clients, "the base model")
            right.query_one("Select").value = "run:broken"
            await wait_until(pilot, lambda: "cannot load" in str(right.query_one(".pane-status").render()),
                             "the error")
            assert right.query_one(".pane-status").has_class("-error") and 1 not in app.screen.clients
            await pilot.press("f2")  # nothing to prefer: a warning, no dataset
            await pilot.press("escape")
            await pilot.pause()
        assert fakes.ended == ["BASE"]
        assert not fakes.started["base"].thread.is_alive()
        assert not (projects.load("p").path / "datasets" / f"{conversations.PAIRS_DATASET}.jsonl").exists()
    finally:
        fakes.close()
