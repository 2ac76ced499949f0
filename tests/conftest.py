"""Shared fixtures: an isolated projects home, the tiny model, small data files."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# The suite describes a CPU machine (fp32 weights, the host's memory, gloo ranks): on a GPU machine it hides
# the GPUs from itself and every process it starts, so it passes the same everywhere. The tests that take the
# `gpu` fixture give them back to the processes they start, and check the GPU path there.
# What the machine showed is kept where the processes of pytest-xdist, started after this, find it too.
UNSET = "(unset)"
MACHINE_GPUS = os.environ.setdefault("WORKBENCH_TESTS_MACHINE_GPUS", os.environ.get("CUDA_VISIBLE_DEVICES", UNSET))
os.environ["CUDA_VISIBLE_DEVICES"] = ""

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
def cuda_here() -> int:
    """How many CUDA GPUs the processes a test starts can train on here (asked of a child given the machine's
    GPUs; 0 without CUDA)."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    if MACHINE_GPUS != UNSET:
        env["CUDA_VISIBLE_DEVICES"] = MACHINE_GPUS
    probe = "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)"
    found = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    return int(found.stdout.strip() or 0) if found.returncode == 0 else 0


@pytest.fixture
def gpu(cuda_here, monkeypatch) -> None:
    """The processes this test starts see the machine's GPUs (the suite hides them); skipped without CUDA."""
    if not cuda_here:
        pytest.skip("needs a CUDA GPU")
    if MACHINE_GPUS == UNSET:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", MACHINE_GPUS)


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
