"""The playground: talk to one or two models side by side, the same message to both.

Each pane's model is served by its own detached process (`workbench.serve`), reached over a socket: the
screen loads nothing itself. Tokens stream into the panes as they come; an answer can be stopped or
asked again; the conversation is saved in the project after each answer. A person's judgement becomes
training data from here: a preference pair (prefer left / right) or an edited answer (an SFT example).
Closing the screen ends its servers; a server the app lost (a dropped SSH connection) ends after its
idle minutes, and reopening the screen on the same model reconnects to it while it is warm.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Header, Input, Select

from screens.messages import forward_failure
from screens.widgets.chat_pane import ChatPane
from screens.widgets.footer import KeyFooter
from workbench.jobs.store import ModelChoice
from workbench.params import ParamError
from workbench.serve import catalog, conversations, launch
from workbench.serve.client import Client
from workbench.serve.params import ChatParams, chat_params
from workbench.serve.protocol import ServeError

NUMBERS = ("temperature", "top_p", "max_new_tokens", "seed")
TITLES = {"temperature": "temp", "top_p": "top-p", "max_new_tokens": "tokens", "seed": "seed"}


def figures(done: dict) -> str:
    """`24 tokens · first 0.31 s · 18.2 tok/s · length`: how an answer went."""
    first, speed = done.get("first_token_s"), done.get("tokens_per_s")
    return " · ".join(part for part in (
        f"{done.get('tokens', 0)} tokens", f"first {first:.2f} s" if first is not None else "",
        (f"{speed:.0f} tok/s" if speed >= 100 else f"{speed:.1f} tok/s") if speed else "",
        done.get("reason", "")) if part)


def _open(project: str, ref: str, status: Callable[[str], None]) -> Client:
    return launch.start(project, ref, status=status).connect()


def _end(client: Client) -> None:
    launch.end(client.folder)


@dataclass
class Servers:
    """How the screen reaches models: the real servers by default (tests give it others)."""

    choices: Callable[[str], list[ModelChoice]] = catalog.choices
    open: Callable[[str, str, Callable[[str], None]], Client] = _open
    end: Callable[[Client], None] = _end


class PlaygroundScreen(Screen):
    CSS_PATH = "styles/playground.tcss"
    AUTO_FOCUS = "#message"
    BINDINGS = [
        Binding("escape", "back", "Back", id="playground.back"),
        Binding("ctrl+s", "stop", "Stop", tooltip="Stop the answers being written", id="playground.stop"),
        Binding("ctrl+r", "regenerate", "Regenerate", tooltip="Ask the last message again (next seed)",
                id="playground.regenerate"),
        Binding("ctrl+n", "new", "New chat", tooltip="Start a new conversation", id="playground.new"),
        Binding("f2", "prefer(0)", "Prefer left", tooltip="Keep (prompt, left, right) as a preference pair",
                id="playground.prefer_left"),
        Binding("f3", "prefer(1)", "Prefer right", tooltip="Keep (prompt, right, left) as a preference pair",
                id="playground.prefer_right"),
        Binding("f4", "save_example", "Save as SFT example",
                tooltip="Edit the focused pane's last answer and keep it as a chat example", id="playground.sft"),
        Binding("ctrl+o", "open_conversation", "Open conversation…", show=False, id="playground.open",
                tooltip="Take up a saved conversation again: its models, settings and turns"),
    ]

    def __init__(self, project: str, servers: Servers | None = None, models: tuple[str, str] = ("base", "")) -> None:
        super().__init__()
        self.project = project
        self.models = models  # the refs the left and right panes start on ("": none)
        self.servers = servers or Servers()
        self.clients: dict[int, Client] = {}  # pane index -> its model's client
        self.requests: dict[int, str] = {}  # pane index -> the answer it waits for
        self.conversation = conversations.new_id()
        self.created = time.time()
        self.regenerations = 0  # added to the seed: each regeneration asks with the next seed
        self.current = 0  # the pane "save as SFT example" takes (the last one focused)
        self.closing = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="settings"):
            system = Input(placeholder="none", id="system")
            system.border_title = "System prompt"
            yield system
            defaults = ChatParams()
            for name in NUMBERS:
                field = Input(str(getattr(defaults, name)), id=name, classes="number",
                              tooltip=ChatParams.__dataclass_fields__[name].metadata["help"])
                field.border_title = TITLES[name]
                yield field
        with Horizontal(id="panes"):
            yield ChatPane(0, id="left")
            yield ChatPane(1, id="right")
        message = Input(placeholder="Message to both models (enter sends)", id="message")
        yield message
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = f"{self.project} · playground"
        self.load_choices()

    @work(thread=True, exit_on_error=False, name="Listing the models")
    def load_choices(self) -> None:
        choices = [(c.label, c.ref) for c in self.servers.choices(self.project)]
        self.app.call_from_thread(self.show_choices, choices)

    def show_choices(self, choices: list[tuple[str, str]]) -> None:
        refs = [ref for _, ref in choices]
        for pane, wanted in zip(self.panes, self.models):
            # a run still training has no final model: its newest checkpoint (listed first) stands in
            ref = wanted if wanted in refs else next((r for r in refs if wanted and r.startswith(f"{wanted}/")), "")
            pane.set_choices(choices, selected=ref)
            if wanted and not ref:
                pane.set_status(f"{wanted.removeprefix('run:')} has no model to talk to yet: no checkpoint saved.",
                                error=True)

    @property
    def panes(self) -> tuple[ChatPane, ChatPane]:
        return self.query_one("#left", ChatPane), self.query_one("#right", ChatPane)

    def on_descendant_focus(self, event) -> None:
        for pane in self.panes:
            if pane in event.widget.ancestors_with_self:
                self.current = pane.index

    # the models ------------------------------------------------------------------------

    def on_chat_pane_picked(self, event: ChatPane.Picked) -> None:
        pane = event.pane
        old = self.clients.pop(pane.index, None)
        if old is not None:
            self.release(old)
        if event.ref:
            pane.set_status(f"Starting {pane.labels.get(event.ref, event.ref)}…")
            self.connect(pane.index, event.ref)
        else:
            pane.set_status(f"Pick a model for the {pane.side} pane.")

    @work(thread=True, exit_on_error=False, group="connect", name="Starting a model server")
    def connect(self, index: int, ref: str) -> None:
        pane = self.panes[index]

        def status(message: str, error: bool = False) -> None:
            if not self.closing:
                self.app.call_from_thread(pane.set_status, message, error)

        try:
            client = self.servers.open(self.project, ref, status)
        except ServeError as exc:
            status(str(exc), True)
            return
        if self.closing:  # the screen closed while the model loaded: nobody will talk to it
            client.close()
            self.servers.end(client)
            return
        self.app.call_from_thread(self.connected, index, ref, client)

    def connected(self, index: int, ref: str, client: Client) -> None:
        pane = self.panes[index]
        if pane.ref != ref:  # another model was picked meanwhile
            self.release(client)
            return
        self.clients[index] = client
        pane.set_status(f"ready · {client.label} · {client.hello.get('backend', '?')}")

    def release(self, client: Client) -> None:
        """End a server no pane uses any more (two panes may share one)."""
        if all(other.folder != client.folder for other in self.clients.values()):
            self.end_servers([client])
        else:
            client.close()

    @work(thread=True, exit_on_error=False, name="Ending model servers")
    def end_servers(self, clients: list[Client]) -> None:
        for client in clients:
            client.close()
            self.servers.end(client)

    # asking ----------------------------------------------------------------------------

    def read_params(self) -> ChatParams | None:
        values = {name: self.query_one(f"#{name}", Input).value for name in NUMBERS}
        values["system"] = self.query_one("#system", Input).value
        try:
            return chat_params(values)
        except ParamError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return None

    def ready_panes(self) -> list[ChatPane]:
        return [pane for pane in self.panes if pane.index in self.clients]

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "message":
            self.query_one("#message", Input).focus()
            return
        text = event.value.strip()
        if not text:
            return
        panes = self.ready_panes()
        if not panes:
            self.notify("No model is ready yet: pick one in a pane and wait for it to load.", severity="warning")
            return
        if any(pane.answering for pane in self.panes):
            self.notify("Still answering: wait, or stop it (ctrl+s).", severity="warning")
            return
        params = self.read_params()
        if params is None:
            return
        event.input.value = ""
        self.regenerations = 0
        for pane in panes:
            pane.add_user(text)
            self.ask(pane, params)

    def ask(self, pane: ChatPane, params: ChatParams) -> None:
        request_id = uuid.uuid4().hex[:8]
        self.requests[pane.index] = request_id
        pane.begin_answer()
        self.answer(pane.index, self.clients[pane.index], list(pane.messages), params, request_id)

    @work(thread=True, exit_on_error=False, name="Answering")
    def answer(self, index: int, client: Client, messages: list[dict], params: ChatParams, request_id: str) -> None:
        pane = self.panes[index]
        try:
            for event in client.generate(messages, params, request_id):
                if event["event"] == "token":
                    self.app.call_from_thread(pane.add_text, event["text"])
                elif event["event"] == "done":
                    self.app.call_from_thread(self.answered, index, event)
        except ServeError as exc:
            self.app.call_from_thread(self.failed, index, str(exc))

    def answered(self, index: int, done: dict) -> None:
        pane = self.panes[index]
        self.requests.pop(index, None)
        pane.end_answer(done.get("text", ""), "(stopped)" if done.get("reason") == "stopped" else "")
        pane.set_status(figures(done))
        if not any(p.answering for p in self.panes):
            self.save_conversation()

    def failed(self, index: int, message: str) -> None:
        pane = self.panes[index]
        self.requests.pop(index, None)
        pane.end_answer(None)
        pane.set_status(message, error=True)

    def action_stop(self) -> None:
        for index, request_id in list(self.requests.items()):
            if client := self.clients.get(index):
                try:
                    client.stop(request_id)
                except ServeError as exc:
                    self.failed(index, str(exc))

    def action_regenerate(self) -> None:
        if any(pane.answering for pane in self.panes):
            self.notify("Still answering: wait, or stop it (ctrl+s).", severity="warning")
            return
        panes = [pane for pane in self.ready_panes() if pane.last_answer() is not None]
        if not panes:
            self.notify("Nothing to regenerate yet: send a message first.", severity="warning")
            return
        params = self.read_params()
        if params is None:
            return
        self.regenerations += 1
        params.seed = (params.seed + self.regenerations) % 2**32
        for pane in panes:
            pane.drop_last_answer()
            self.ask(pane, params)

    def action_new(self) -> None:
        if any(pane.answering for pane in self.panes):
            self.action_stop()
        for pane in self.panes:
            pane.clear()
        self.conversation, self.created = conversations.new_id(), time.time()
        self.regenerations = 0
        self.notify("New conversation.")

    # keeping what the person judged ----------------------------------------------------------

    def action_prefer(self, index: int) -> None:
        chosen, rejected = self.panes[index], self.panes[1 - index]
        if chosen.answering or rejected.answering:
            self.notify("Wait for both answers first.", severity="warning")
            return
        params = self.read_params()
        if params is None:
            return
        try:
            count = conversations.save_pair(self.project, params.system, chosen.messages, rejected.messages)
        except (ValueError, OSError) as exc:
            self.notify(str(exc), severity="warning", markup=False)
            return
        # both panes go on from the preferred answer, so the next pair shares its prompt too
        rejected.replace_last_answer(chosen.last_answer() or "", f"(the {chosen.side} answer, preferred)")
        self.save_conversation()
        self.notify(f"Preferred the {chosen.side} answer: {count} pair(s) in {conversations.PAIRS_DATASET}.")

    def action_save_example(self) -> None:
        pane = self.panes[self.current]
        if pane.last_answer() is None or pane.answering:
            pane = next((p for p in self.panes if p.last_answer() is not None and not p.answering), pane)
        answer = pane.last_answer()
        if answer is None or pane.answering:
            self.notify("There is no answer to keep yet: send a message first.", severity="warning")
            return
        from screens.edit_answer import EditAnswerScreen

        def keep(edited: str | None) -> None:
            if edited is None:
                return
            params = self.read_params()
            if params is None:
                return
            try:
                count = conversations.save_example(self.project, params.system, pane.messages, edited)
            except (ValueError, OSError) as exc:
                self.notify(str(exc), severity="warning", markup=False)
                return
            if edited != answer:
                pane.replace_last_answer(edited, "(edited, kept as an example)")
            self.save_conversation()
            self.notify(f"Saved as an example: {count} in {conversations.SFT_DATASET}.")

        self.app.push_screen(EditAnswerScreen(f"The {pane.side} answer as an SFT example", answer), keep)

    def action_open_conversation(self) -> None:
        if any(pane.answering for pane in self.panes):
            self.notify("Still answering: wait, or stop it (ctrl+s).", severity="warning")
            return
        from screens.conversations import ConversationsScreen

        self.app.push_screen(ConversationsScreen(self.project), self.restore)

    def restore(self, data: dict | None) -> None:
        """Show a saved conversation and go on with it: each pane's model, turns and the settings."""
        if not data:
            return
        params = data.get("params") or {}
        self.query_one("#system", Input).value = str(params.get("system") or "")
        for name in NUMBERS:
            if params.get(name) is not None:
                self.query_one(f"#{name}", Input).value = str(params[name])
        saved = [p for p in data.get("panes", []) if isinstance(p, dict)][:2]
        for pane, kept in zip(self.panes, saved + [{}] * (2 - len(saved))):
            pane.clear()
            for message in kept.get("messages", []):
                if message.get("role") == "user":
                    pane.add_user(str(message.get("content", "")))
                elif message.get("role") == "assistant":
                    pane.begin_answer()
                    pane.end_answer(str(message.get("content", "")))
            ref = str(kept.get("model") or "")
            if ref and ref != pane.ref:
                if ref in pane.labels:
                    pane.query_one(Select).value = ref  # its server starts as if picked
                else:
                    pane.set_status(f"{kept.get('label') or ref} is gone: pick another model to go on.", error=True)
        self.conversation, self.created = str(data["id"]), float(data.get("created") or time.time())
        self.regenerations = 0
        self.notify(f"Conversation {data['id']} taken up again.")

    def save_conversation(self) -> None:
        params = self.read_params() or ChatParams()
        panes = [{"model": pane.ref, "label": pane.labels.get(pane.ref, ""), "messages": list(pane.messages)}
                 for pane in self.panes if pane.messages]
        if panes:
            self.write_conversation(self.conversation, params, panes, self.created)

    @work(thread=True, exit_on_error=False, name="Saving the conversation")
    def write_conversation(self, conversation: str, params: ChatParams, panes: list[dict], created: float) -> None:
        conversations.save(self.project, conversation, params, panes, created)

    # closing ---------------------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def on_unmount(self) -> None:
        self.closing = True
        self.action_stop()
        clients, self.clients = list(self.clients.values()), {}
        unique = {client.folder: client for client in clients}
        for client in clients:
            client.close()
        for client in unique.values():
            try:
                self.servers.end(client)
            except (OSError, ServeError):
                pass

    def on_worker_state_changed(self, event) -> None:
        forward_failure(self, event)
