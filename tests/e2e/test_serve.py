"""The playground's model servers as a person runs them: detached processes on the tiny model, from
transformers and from its GGUF in llama.cpp, started by `workbench chat` and found again warm."""

from __future__ import annotations

import os
import select

import pytest

from tests.e2e.conftest import ANSWER, cli
from workbench import locations
from workbench.cli.main import main
from workbench.run import events as ev
from workbench.run import layout, liveness
from workbench.serve import catalog, launch
from workbench.serve.params import chat_params
from workbench.serve.protocol import ServeError

GREEDY = chat_params({"temperature": 0, "max_new_tokens": 32})
ASK = [{"role": "user", "content": "Catalogue item 7."}]


def wait_exit(pid: int, timeout: float) -> None:
    """Block until process `pid` (not necessarily a child of this one) has ended."""
    fd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    assert ready, f"process {pid} still runs after {timeout:.0f} s"


def test_a_server_outlives_the_command_and_its_clients_and_ends_when_idle(tiny_project):
    # `chat --keep` starts the server, answers, and exits: the server stays warm in its own session
    result = cli("chat", tiny_project, "--model", "base", "--message", "Hello", "--keep", "--idle-minutes", "0.15",
                 "--set", "max_new_tokens=4", "--set", "seed=3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("== base (tiny-llama-v1, transformers) ==\n")
    assert "(4 tokens, length, first token" in result.stderr

    handle = launch.start(tiny_project, "base")  # found warm: nothing started here
    assert handle.proc is None and liveness.is_alive(handle.folder)
    pid = liveness.read_pid(handle.folder)
    client = handle.connect()
    assert client.hello["pid"] == pid and client.hello["backend"] == "transformers"
    events = client.generate(ASK, chat_params({"max_new_tokens": 200}), "gone")
    assert next(events)["event"] == "token"
    client.close()  # mid-answer: the app quit, or the SSH connection dropped

    with handle.connect() as again:  # a reconnect is served by the same warm process
        assert again.hello["pid"] == pid
        first = again.ask(ASK, GREEDY)
        second = again.ask(ASK, GREEDY)
    assert first["tokens"] == 32 and first["text"] == second["text"]

    wait_exit(pid, timeout=120)  # nobody asks anything for 0.15 minutes: it ends by itself
    ended = ev.read_all(handle.folder / layout.EVENTS)
    assert isinstance(ended[-1], ev.Finished) and ended[-1].reason == "idle"
    assert not (handle.folder / "server.sock").exists()


@pytest.mark.gguf
def test_the_trained_model_and_its_f16_gguf_give_the_same_greedy_answer(full_run, tmp_path, capsys):
    project, run_id = full_run
    assert main(["export", project, run_id, "--format", "gguf", "--quant", "F16", "--no-chat-check"]) == 0
    gguf = locations.exports_dir(project, run_id) / "gguf" / f"{run_id}-f16.gguf"
    assert str(gguf) in [c.ref for c in catalog.choices(project)]  # the screen lists it

    answers = {}
    for ref in (f"run:{run_id}", str(gguf)):
        handle = launch.start(project, ref, idle_minutes=5)
        try:
            with handle.connect() as client:
                answers[client.hello["backend"]] = client.ask(ASK, GREEDY)
        finally:
            launch.end(handle.folder)
            handle.proc.wait(60)
    hf, llama = answers["transformers"], answers["llama.cpp"]
    assert hf["text"] == llama["text"] and ANSWER in hf["text"], answers
    assert hf["reason"] == llama["reason"] == "stop"  # both end the turn where the trained model does

    # a GGUF cut short is refused before anything loads, in one line
    cut = tmp_path / "cut.gguf"
    with open(gguf, "rb") as src, open(cut, "wb") as dst:
        dst.write(src.read(gguf.stat().st_size // 2))
    capsys.readouterr()
    assert main(["chat", project, "--model", str(cut), "--message", "Hi"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("workbench: error: llama.cpp cannot load cut.gguf: ") and "\n" not in err
    with pytest.raises(ServeError, match="cannot load"):
        launch.prepare(project, str(cut))
