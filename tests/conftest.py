"""Shared fixtures: an isolated projects home, the tiny model, small data files."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# A suite started under nohup, or as a background job of a script, inherits SIGHUP or SIGINT ignored, and so
# would every process it starts (an ignored signal stays ignored across exec): the tests that hang up on a
# process or interrupt it need the defaults a terminal gives.
if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

CHAT_RECORDS = [
    {"messages": [{"role": "user", "content": f"Add one to {i}."},
                  {"role": "assistant", "content": f"{i} plus one is {i + 1}."}]}
    for i in range(40)
]


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """A 2-layer random Llama with the real SmolLM2 tokenizer, built once per machine."""
    from workbench.testing import make_tiny_model, tiny_home

    return make_tiny_model(tiny_home())


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty projects home for this test (WORKBENCH_HOME), inherited by workers."""
    path = tmp_path / "projects"
    path.mkdir()
    monkeypatch.setenv("WORKBENCH_HOME", str(path))
    return path


def write_jsonl(path: Path, records: list, extra_lines: list[str] = ()) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
        for line in extra_lines:
            f.write(line + "\n")
    return path


@pytest.fixture
def chat_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "chat.jsonl", CHAT_RECORDS)


@pytest.fixture
def tiny_project(home, tiny_model, chat_file) -> str:
    """A project on the tiny model with 40 chat records imported."""
    from workbench import project
    from workbench.data.importer import import_file

    project.create("tiny", base_model=str(tiny_model))
    import_file("tiny", chat_file)
    return "tiny"
