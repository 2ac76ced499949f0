"""An embedding run (method embed) is refused in one line where it has no export or evaluation: before a job
starts, from the engine, the CLI and the app alike; its one export, a copy of its sentence-transformers folder,
is tested end to end in tests/e2e/test_embed_export.py."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import cli
from tests.unit.test_store import make_run
from workbench import locations
from workbench import project as projects
from workbench.evaluate import job as eval_job
from workbench.export import ExportError
from workbench.export import job as export_job
from workbench.jobs.store import RunError
from workbench.run import events as ev
from workbench.run import layout
from workbench.run.spec import JobSpec


def embed_run(project: str, run_id: str = "e1") -> str:
    """A finished embed run whose model folder is a sentence-transformers one (no weights: nothing loads it)."""
    run_dir = make_run(project, run_id, [ev.Started(), ev.Finished(step=3, output=str(
        locations.run_dir(project, run_id) / layout.MODEL))])
    spec = JobSpec.load(run_dir)
    spec.method = "embed"
    spec.save(run_dir)
    (run_dir / layout.MODEL).mkdir()
    (run_dir / layout.MODEL / "modules.json").write_text("[]")
    return run_id


@pytest.fixture
def proj(home):
    projects.create("p")
    return "p"


@pytest.mark.parametrize("fmt", ["lora", "gguf", "gguf-lora"])
def test_an_embedding_run_has_no_adapter_or_gguf_export(proj, fmt):
    run_id = embed_run(proj)
    with pytest.raises(ExportError) as caught:
        export_job.start(proj, run_id, fmt)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("Run e1 is an embedding model (method embed): its folder is a sentence-transformers")
    assert f"no '{fmt}' export" in message and "export it as 'merged'" in message
    assert not locations.export_jobs_dir(proj, run_id).exists()  # refused before a job was made


def test_an_embedding_run_has_no_evaluation_by_generation(proj):
    run_id = embed_run(proj)
    with pytest.raises(RunError, match=r"^Run 'e1' is an embedding model \(method embed\): it writes no text"):
        eval_job.plan(proj, run_id)
    assert [info.method for info in eval_job.jobs(proj)] == []


def test_the_cli_says_so_in_one_line(proj):
    run_id = embed_run(proj)
    exported = cli("export", proj, run_id, "--format", "gguf")
    assert exported.returncode != 0
    assert len(exported.stderr.strip().splitlines()) == 1 and "embedding model (method embed)" in exported.stderr
    evaluated = cli("eval", proj, run_id)
    assert evaluated.returncode != 0 and "embedding model (method embed)" in evaluated.stderr
    assert len(evaluated.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("method", "what"), [("eval", "an evaluation job"), ("sample", "a sampling session"),
                                              ("judge", "a judging job"), ("synth", "a synthetic-data job")])
def test_a_job_that_trains_nothing_is_refused_export_in_one_line(proj, method, what):
    run_dir = make_run(proj, "j1", [ev.Started(), ev.Finished(step=3)])
    spec = JobSpec.load(run_dir)
    spec.method = method
    spec.save(run_dir)
    with pytest.raises(ExportError) as caught:
        export_job.start(proj, "j1", "lora")
    assert str(caught.value) == (f"j1 is {what}: it trains no model to export. Name a training run "
                                 "(`workbench runs` lists them).")
    assert not locations.export_jobs_dir(proj, "j1").exists()
    evaluated = cli("eval", proj, "j1")  # the evaluation refuses it in the same words
    assert evaluated.returncode != 0
    assert evaluated.stderr.strip().splitlines() == [f"workbench: error: j1 is {what}: it trains no model to evaluate. "
                                                     "Name a training run (`workbench runs` lists them)."]
