"""End-to-end helpers: the real worker on the tiny model, driven through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench import locations
from workbench.run import events as ev

REPO = Path(__file__).resolve().parents[2]
ANSWER = '{"kind": "book", "ok": true}'

# Tiny-model data whose answer is constant: a few steps teach it, so a trained run scores
# differently from the base model, which proves the trained weights are the ones used.
CONSTANT_RECORDS = [
    {"messages": [{"role": "user", "content": f"Catalogue item {i}."}, {"role": "assistant", "content": ANSWER}]}
    for i in range(40)
]
HELD_OUT = [
    {"messages": [{"role": "user", "content": f"Catalogue item {i}."}, {"role": "assistant", "content": ANSWER}]}
    for i in range(100, 106)
]


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m workbench.cli ARGS` in a fresh process, with this test's environment."""
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=dict(os.environ))


def events(project: str, run_id: str) -> list[ev.Event]:
    return ev.read_all(locations.run_dir(project, run_id) / "events.jsonl")


def of_type(events_: list[ev.Event], cls: type) -> list:
    return [e for e in events_ if isinstance(e, cls)]


def wait_for(predicate, timeout: float = 180, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def make_constant_project(name: str, base_model: Path, folder: Path) -> str:
    from workbench import project as projects
    from workbench.data.importer import import_file

    projects.create(name, base_model=str(base_model))
    import_file(name, write_jsonl(folder / "items.jsonl", CONSTANT_RECORDS))
    import_file(name, write_jsonl(folder / "held-out.jsonl", HELD_OUT), split="eval")
    return name


@pytest.fixture(scope="session")
def e2e_home(tmp_path_factory):
    """A projects home for runs that several tests read (each test that trains its own uses `home`)."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("projects")
        mp.setenv("WORKBENCH_HOME", str(path))
        yield path


@pytest.fixture(scope="session")
def lora_run(e2e_home, tiny_model, tmp_path_factory) -> tuple[str, str, subprocess.CompletedProcess]:
    """(project, run id, CLI result): 30 LoRA steps on the constant task, trained with `train --wait`."""
    project = make_constant_project("tiny", tiny_model, tmp_path_factory.mktemp("data"))
    result = cli("train", project, "--wait", "--set", "max_steps=30", "--set", "eval_steps=10",
                 "--set", "save_steps=10", "--set", "learning_rate=1e-2", "--set", "batch_size=4",
                 "--set", "warmup=0")
    assert result.returncode == 0, result.stderr
    return project, result.stdout.splitlines()[0].strip(), result


@pytest.fixture(scope="session")
def full_run(lora_run) -> tuple[str, str]:
    """(project, run id): full fine-tuning of the tiny model until it answers the constant task.

    LoRA cannot teach the tiny random model much (its tied output layer is frozen and its
    logits are too flat), so the run that must score well trains every weight."""
    project = lora_run[0]
    result = cli("train", project, "--wait", "--set", "mode=full", "--set", "max_steps=80",
                 "--set", "learning_rate=1e-2", "--set", "scheduler=constant", "--set", "warmup=0",
                 "--set", "batch_size=4", "--set", "eval_steps=0", "--set", "save_steps=100")
    assert result.returncode == 0, result.stderr
    return project, result.stdout.splitlines()[0].strip()
