"""Model references: base, run:<id> (or the bare id), run:<id>/checkpoint-N, a path."""

from __future__ import annotations

import pytest

from workbench import locations
from workbench import project as projects
from workbench.files import write_toml
from workbench.run import model_refs


def make_run(project: str, run_id: str, output: str = "adapter", checkpoints: tuple[int, ...] = ()) -> None:
    run_dir = locations.run_dir(project, run_id)
    (run_dir / output).mkdir(parents=True)
    write_toml(run_dir / "job.toml", {"job": {"id": run_id, "method": "sft"}})
    for step in checkpoints:
        (run_dir / "checkpoints" / f"checkpoint-{step}").mkdir(parents=True)
        (run_dir / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")


def test_each_form_of_reference_resolves(home, tmp_path):
    projects.create("p")
    make_run("p", "r1", checkpoints=(5,))
    run_dir = locations.run_dir("p", "r1")
    assert model_refs.resolve_ref("p", "base") == "default"
    assert model_refs.resolve_ref("p", "") == "default"
    assert model_refs.resolve_ref("p", "run:r1") == str(run_dir / "adapter")
    assert model_refs.resolve_ref("p", "r1") == str(run_dir / "adapter")  # the bare id
    assert model_refs.resolve_ref("p", "run:r1/checkpoint-5") == str(run_dir / "checkpoints" / "checkpoint-5")
    folder = tmp_path / "model"
    folder.mkdir()
    assert model_refs.resolve_ref("p", str(folder)) == str(folder)


def test_bad_references_say_what_to_write(home):
    projects.create("p")
    make_run("p", "r1", checkpoints=(5,))
    locations.run_dir("p", "r2").mkdir(parents=True)
    (locations.run_dir("p", "r2") / "job.toml").write_text("")
    with pytest.raises(model_refs.RefError, match="has no run 'nope'"):
        model_refs.resolve_ref("p", "run:nope")
    with pytest.raises(model_refs.RefError, match="no complete checkpoint 'checkpoint-9'"):
        model_refs.resolve_ref("p", "run:r1/checkpoint-9")
    with pytest.raises(model_refs.RefError, match="has produced no model yet"):
        model_refs.resolve_ref("p", "run:r2")
    with pytest.raises(model_refs.RefError, match="give base, run:<id>"):
        model_refs.resolve_ref("p", "/no/such/folder")
