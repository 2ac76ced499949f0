"""Project names, the project.toml round trip, and atomic writes."""

from __future__ import annotations

import os
import re

import pytest

from workbench import locations
from workbench import project as projects
from workbench.files import read_toml, write_atomic, write_toml


@pytest.mark.parametrize("name, reason", [
    ("a/b", "path separator"),
    ("a\\b", "path separator"),
    ("..", "'..'"),
    ("a..b", "'..'"),
    ("", "needs a name"),
    ("   ", "needs a name"),
    ("my project", "no spaces"),
    (".hidden", "start with a letter or digit"),
    ("-dash", "start with a letter or digit"),
    ("x" * 65, "up to 63"),
])
def test_bad_names_are_refused_with_the_reason(home, name, reason):
    with pytest.raises(projects.ProjectError) as info:
        projects.create(name)
    assert reason in str(info.value)
    assert list(home.iterdir()) == []  # nothing half-created


@pytest.mark.parametrize("name", ["demo", "Run_2", "a.b-c", "9lives", "x" * 64])
def test_good_names_are_accepted(name):
    assert projects.validate_name(name) == name


def test_create_load_list_round_trip(home, tiny_model):
    created = projects.create("books", base_model=str(tiny_model), description="Cataloguing")
    projects.create("another")
    assert created.path == home / "books"
    assert (home / "books" / "datasets").is_dir() and (home / "books" / "runs").is_dir()

    loaded = projects.load("books")
    assert (loaded.name, loaded.base_model, loaded.description) == ("books", str(tiny_model), "Cataloguing")
    assert loaded.created == created.created
    assert [p.name for p in projects.list_projects()] == ["another", "books"]
    assert projects.load("another").base_model == "default"


def test_create_refuses_a_duplicate_and_a_missing_base_model(home, tmp_path):
    projects.create("books")
    with pytest.raises(projects.ProjectError, match="already exists"):
        projects.create("books")
    with pytest.raises(projects.ProjectError, match="does not exist"):
        projects.create("other", base_model=str(tmp_path / "nowhere"))
    assert not (home / "other").exists()


def test_create_checks_that_the_base_model_is_a_model(home, tmp_path, tiny_model):
    (tmp_path / "folder").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    for base, problem in ((tmp_path / "folder", "is not a model folder (no config.json in it)"),
                          (tmp_path / "notes.txt", "is a file but not a .gguf model")):
        with pytest.raises(projects.ProjectError, match=re.escape(problem) + ": give a Hugging Face model folder"):
            projects.create("other", base_model=str(base))
    assert not (home / "other").exists()
    (tmp_path / "weights.gguf").write_bytes(b"GGUF")
    assert projects.create("gguf", base_model=str(tmp_path / "weights.gguf")).base_model == \
        str(tmp_path / "weights.gguf")
    assert projects.create("hf", base_model=str(tiny_model)).base_model == str(tiny_model)


def test_load_of_a_missing_project_names_the_home(home):
    with pytest.raises(projects.ProjectError, match=f"No project named 'ghost' in {home}"):
        projects.load("ghost")


def test_list_skips_folders_that_are_not_projects(home):
    projects.create("real")
    (home / "not a project").mkdir()
    (home / "empty").mkdir()
    (home / "broken").mkdir()
    (home / "broken" / "project.toml").write_text("this is = not [toml")
    assert [p.name for p in projects.list_projects()] == ["real"]


def test_datasets_survive_the_round_trip(home):
    p = projects.create("books")
    p.datasets.append(projects.DatasetEntry(name="train", kind="chat", records=3, source="/x.jsonl",
                                            imported="2025-01-01T00:00:00+00:00", split="eval"))
    p.save()
    entry = projects.load("books").dataset("train")
    assert (entry.kind, entry.records, entry.split, entry.file) == ("chat", 3, "eval", "datasets/train.jsonl")
    with pytest.raises(projects.ProjectError, match="has no dataset 'nope' \\(it has: train\\)"):
        projects.load("books").dataset("nope")


def test_home_follows_the_environment(home):
    assert locations.projects_home() == home
    assert locations.run_dir("p", "r") == home / "p" / "runs" / "r"


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "f.toml"
    write_toml(path, {"a": {"x": 1, "gone": None}})
    write_toml(path, {"a": {"x": 2}})
    assert read_toml(path) == {"a": {"x": 2}}  # None values are left out (TOML has no null)
    assert sorted(os.listdir(tmp_path)) == ["f.toml"]


def test_failed_atomic_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "f.txt"
    write_atomic(path, "old")

    class Unwritable:  # str() works but writing it fails half-way
        pass

    with pytest.raises(TypeError):
        write_atomic(path, Unwritable())  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["f.txt"]
