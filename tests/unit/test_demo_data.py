"""The shipped demo project is exactly what its generator writes, and its answers are checkable."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "projects" / "demo"


def load_generator():
    spec = importlib.util.spec_from_file_location("make_demo_data", REPO / "scripts" / "make_demo_data.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_committed_demo_is_what_the_generator_writes(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))  # the generator sets it; restore it after
    out = load_generator().write_project(tmp_path)
    for name in ("project.toml", "datasets/citations-train.jsonl", "datasets/citations-eval.jsonl"):
        assert (out / name).read_bytes() == (DEMO / name).read_bytes(), f"{name}: rerun scripts/make_demo_data.py"


def test_the_generator_refuses_to_overwrite_without_force(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    generator = load_generator()
    generator.write_project(tmp_path)
    with pytest.raises(SystemExit, match="--force"):
        generator.write_project(tmp_path)
    generator.write_project(tmp_path, force=True)


def test_demo_project_loads_with_train_and_eval_splits(monkeypatch):
    from workbench import project as projects

    monkeypatch.setenv("WORKBENCH_HOME", str(REPO / "projects"))
    demo = projects.load("demo")
    assert demo.base_model == "default" and "citation" in demo.description
    splits = {d.name: (d.split, d.kind, d.records) for d in demo.datasets}
    assert splits == {"citations-train": ("train", "chat", 400), "citations-eval": ("eval", "chat", 60)}


def test_every_answer_is_json_whose_fields_come_from_the_citation():
    for path in (DEMO / "datasets").glob("*.jsonl"):
        for record in records(path):
            roles = [m["role"] for m in record["messages"]]
            assert roles == ["system", "user", "assistant"]
            citation = record["messages"][1]["content"]
            answer = json.loads(record["messages"][2]["content"])
            assert set(answer) == {"title", "author", "year"}
            assert answer["title"] in citation
            assert str(answer["year"]) in citation and 1800 < answer["year"] <= 2025
            for person in answer["author"].split("; "):
                surname, first = person.split(", ")
                assert surname.lower() in citation.lower()
                assert first.rstrip(".").split(".")[0].split("-")[0] in citation


def test_held_out_books_are_not_in_the_training_set():
    def books(name):
        return {(a["title"], a["author"]) for a in
                (json.loads(r["messages"][2]["content"]) for r in records(DEMO / "datasets" / name))}

    train, held_out = books("citations-train.jsonl"), books("citations-eval.jsonl")
    assert len(held_out) == 60 and not train & held_out


def test_the_data_is_varied():
    rows = records(DEMO / "datasets" / "citations-train.jsonl")
    citations = [r["messages"][1]["content"] for r in rows]
    answers = [json.loads(r["messages"][2]["content"]) for r in rows]
    assert sum("ISBN" in c for c in citations) > 40
    assert sum("; " in a["author"] for a in answers) > 60  # several authors
    assert sum(": " in c or " : " in c for c in citations) > 100  # subtitles
    assert sum("«" in c for c in citations) > 20 and sum("(" in c and ")." in c for c in citations) > 40
    french = sum(a["title"].startswith(("Le ", "La ", "Les ", "L'", "Histoire", "Essai")) for a in answers)
    assert 100 < french < 300
