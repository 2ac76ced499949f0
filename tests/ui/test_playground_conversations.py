"""A saved playground conversation taken up again (ctrl+o, or the palette): its models start in their panes,
its turns and settings come back, and the next answer goes on in the same file. Scripted servers as in
tests/ui/test_playground.py."""

from __future__ import annotations

from textual.widgets import Input, OptionList

from screens.commands import ScreenCommands
from screens.conversations import ConversationsScreen
from screens.playground import PlaygroundScreen
from tests.ui.test_playground import (
    SIZE,
    FakeServers,
    PlaygroundApp,
    answers,
    panes,
    send,
    wait_until,
)
from workbench import project as projects
from workbench.serve import conversations
from workbench.serve.params import ChatParams

TURNS = [{"role": "user", "content": "Catalogue: Eco, Umberto. The Name of the Rose. 1980."},
         {"role": "assistant", "content": '{"title": "The Name of the Rose"}'}]


def saved(conversation_id: str, models: tuple[str, str], created: float) -> None:
    answer = TURNS[1]["content"]
    panes_ = [{"model": ref, "label": ref, "messages": [TURNS[0], {"role": "assistant", "content": f"{ref}: {answer}"}]}
              for ref in models]
    conversations.save("p", conversation_id, ChatParams(system="Answer in JSON.", temperature=0.0, seed=7), panes_,
                       created)


async def test_a_saved_conversation_comes_back_with_its_models_and_goes_on_in_its_file(home, tmp_path):
    projects.create("p")
    saved("20261130-180000", ("base", "run:r1"), 1796000000.0)
    saved("20261129-090000", ("base", "base"), 1795900000.0)
    fakes = FakeServers(tmp_path)
    app = PlaygroundApp(fakes.servers())
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            await wait_until(pilot, lambda: 0 in screen.clients, "the base model")
            assert "Open conversation…" in [name for name, _, _ in ScreenCommands(screen)._commands()]
            await pilot.press("ctrl+o")
            modal = app.screen
            assert isinstance(modal, ConversationsScreen)
            await wait_until(pilot, lambda: modal.found is not None, "the list")
            options = modal.query_one(OptionList)
            assert options.option_count == 2
            first = options.get_option_at_index(0).prompt.plain  # newest first
            assert "base | run:r1" in first and "1 turn(s)" in first and "Eco, Umberto" in first
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, PlaygroundScreen) and 1 in screen.clients,
                             "the run's model")
            left, right = panes(app)
            assert (left.ref, right.ref) == ("base", "run:r1")
            assert right.messages == [TURNS[0], {"role": "assistant", "content": f"run:r1: {TURNS[1]['content']}"}]
            assert screen.query_one("#system", Input).value == "Answer in JSON."
            assert screen.query_one("#temperature", Input).value == "0.0"
            assert screen.conversation == "20261130-180000"

            await send(pilot, app, "And its author?")
            await wait_until(pilot, lambda: len(answers(right)) == 2 and not right.answering, "the next turn")
            sent = fakes.started["run:r1"].backend.seen[-1][0]
            assert [m["content"] for m in sent][-3:] == [TURNS[0]["content"], f"run:r1: {TURNS[1]['content']}",
                                                        "And its author?"]  # the model sees the saved turns
            await wait_until(pilot, lambda: len(conversations.load("p", "20261130-180000")["panes"][1]["messages"]) == 4,
                             "the same file")
            assert conversations.list_ids("p") == ["20261130-180000", "20261129-090000"]  # no new file
    finally:
        fakes.close()


async def test_a_model_that_is_gone_is_said_and_nothing_saved_lists_nothing(home, tmp_path):
    projects.create("p")
    fakes = FakeServers(tmp_path)
    app = PlaygroundApp(fakes.servers())
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("ctrl+o")
            modal = app.screen
            await wait_until(pilot, lambda: modal.found is not None, "the list")
            assert "None saved yet" in str(modal.query_one("#hint").render())
            await pilot.press("escape")
            saved("20261130-180000", ("base", "run:deleted"), 1796000000.0)
            await pilot.press("ctrl+o")
            modal = app.screen
            await wait_until(pilot, lambda: modal.found, "the list")
            await pilot.press("enter")
            _, right = panes(app)
            await wait_until(pilot, lambda: right.messages, "the turns")
            assert "run:deleted is gone" in str(right.query_one(".pane-status").render())
            assert right.ref == ""
    finally:
        fakes.close()
