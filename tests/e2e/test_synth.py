"""Synthetic data end to end: a teacher writes a dataset into the project, filtered, reported, trainable."""

from __future__ import annotations

import json

import pytest

from tests.conftest import CHAT_RECORDS
from tests.e2e.conftest import cli, events, of_type, wait_for, write_jsonl
from workbench import locations
from workbench import project as projects
from workbench.data.importer import import_file
from workbench.files import read_toml
from workbench.jobs import store
from workbench.run import events as ev

pytestmark = pytest.mark.e2e


@pytest.fixture
def synth_project(home, tiny_model, tmp_path) -> str:
    projects.create("synth", base_model=str(tiny_model))
    import_file("synth", write_jsonl(tmp_path / "chat.jsonl", CHAT_RECORDS))
    return "synth"


def synth(project: str, *args: str):
    result = cli("train", project, "--method", "synth", "--wait", *args)
    run_id = result.stdout.splitlines()[0].strip() if result.stdout else ""
    return result, run_id


def test_answers_become_a_chat_dataset_that_sft_trains_on(synth_project):
    result, run_id = synth(synth_project, "--dataset", "chat", "--set", "n_per_prompt=2", "--set", "max_new_tokens=8",
                           "--set", "batch_size=20", "--set", "output=teacher-answers", "--set", "min_chars=12")
    assert result.returncode == 0, result.stderr
    run_dir = locations.run_dir(synth_project, run_id)
    report = read_toml(run_dir / "synth_report.toml")["synth"]
    assert report["generated"] == 80 and report["kept"] + sum(report["dropped"].values()) == 80
    assert report["kept"] >= 20 and set(report["dropped"]) <= {"empty", "too_short", "duplicate", "near_duplicate"}
    entry = projects.load(synth_project).dataset("teacher-answers")
    kept = report["kept"]
    assert (entry.kind, entry.records, entry.split, entry.source) == ("chat", kept, "train", f"run:{run_id}")
    records = [json.loads(line) for line in open(run_dir.parent.parent / entry.file)]
    questions = {r["messages"][0]["content"] for r in CHAT_RECORDS}
    assert len(records) == kept and all(r["messages"][0]["content"] in questions for r in records)
    assert all(r["messages"][-1]["role"] == "assistant" and len(r["messages"][-1]["content"]) >= 12 for r in records)
    got = events(synth_project, run_id)
    assert any(s.message.startswith(f"Synthetic data: 80 generated, {kept} kept") for s in of_type(got, ev.Status))
    assert of_type(got, ev.Sample) and of_type(got, ev.Finished)[-1].reason == "completed"

    result = cli("train", synth_project, "--dataset", "teacher-answers", "--wait", "--set", "max_steps=2",
                 "--set", "batch_size=4", "--set", "eval_steps=0", "--set", "max_length=64")
    assert result.returncode == 0, result.stderr
    sft = events(synth_project, result.stdout.splitlines()[0].strip())
    assert [log.step for log in of_type(sft, ev.Log)] == [1, 2]


def test_questions_are_written_for_texts(home, tiny_model, tmp_path):
    projects.create("texts", base_model=str(tiny_model))
    texts = [{"text": f"The river number {i} flows into the sea."} for i in range(6)]
    import_file("texts", write_jsonl(tmp_path / "texts.jsonl", texts))
    result, run_id = synth("texts", "--set", "task=questions", "--set", "max_new_tokens=8")
    assert result.returncode == 0, result.stderr
    entry = projects.load("texts").dataset("questions-texts")
    records = [json.loads(line) for line in open(locations.project_dir("texts") / entry.file)]
    assert entry.records == len(records) >= 1
    assert {r["messages"][1]["content"] for r in records} <= {t["text"] for t in texts}
    assert all(r["messages"][0]["role"] == "user" for r in records)


def test_reasoning_that_never_agrees_is_all_dropped_and_reported(home, tiny_model, tmp_path):
    """The tiny random teacher writes no <think> block: every trace is dropped, the run says why."""
    projects.create("maths", base_model=str(tiny_model))
    prompts = [{"prompt": f"What is {i} plus {i}?", "answer": 2 * i} for i in range(4)]
    import_file("maths", write_jsonl(tmp_path / "maths.jsonl", prompts))
    result, run_id = synth("maths", "--set", "task=reasoning", "--set", "max_new_tokens=8", "--set", "n_per_prompt=2")
    assert result.returncode == 1
    error = of_type(events("maths", run_id), ev.Error)[-1]
    assert error.kind == "bad_data" and error.message.startswith("Every generation was dropped (8 generated, 0 kept")
    report = read_toml(locations.run_dir("maths", run_id) / "synth_report.toml")["synth"]
    assert report["dropped"] == {"bad_format": 8}
    assert "reasoning-maths" not in {d.name for d in projects.load("maths").datasets}


def test_a_stopped_generation_keeps_what_it_wrote(synth_project):
    result = cli("train", synth_project, "--method", "synth", "--set", "batch_size=1", "--set", "max_new_tokens=24",
                 "--set", "output=partial")
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.splitlines()[0].strip()
    path = locations.run_dir(synth_project, run_id) / "generated.jsonl"
    wait_for(lambda: path.exists() and path.read_text().count("\n") >= 2, what="two records written")
    store.stop(synth_project, run_id)
    info = store.wait(synth_project, run_id, timeout=120)
    assert info.state == "stopped"
    kept = path.read_text().count("\n")
    assert 2 <= kept < 40
    assert projects.load(synth_project).dataset("partial").records == kept
    assert read_toml(locations.run_dir(synth_project, run_id) / "synth_report.toml")["synth"]["stopped"] is True
