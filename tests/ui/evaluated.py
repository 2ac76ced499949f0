"""An evaluated project for the report, evaluation and comparison screens: the recorded SFT run with its
weights marked, the results of the base, of the 3-shot baseline and of the run (tests/ui/fixtures/evaluations),
and the recorded evaluation job (tests/ui/fixtures/runs/eval)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.ui.recorded import RUNS, recorded_run
from workbench import locations
from workbench.run import layout

EVALUATIONS = Path(__file__).parent / "fixtures" / "evaluations"
DEMO_DATA = Path(__file__).parents[2] / "projects" / "demo" / "datasets"


def citations(project: str = "demo") -> None:
    """The shipped demo's citations in `project`: 400 train records and the 60 held-out ones the fixtures answer."""
    from workbench.data.importer import import_file

    import_file(project, DEMO_DATA / "citations-train.jsonl")
    import_file(project, DEMO_DATA / "citations-eval.jsonl", split="eval")


def evaluated_run(project: str = "demo", run_id: str = "sft-run") -> Path:
    """The recorded SFT run as `run_id`, finished with an adapter, evaluated with the base and the 3-shot baseline."""
    run_dir = recorded_run("sft", project, run_id)
    (run_dir / "adapter").mkdir()
    (run_dir / "adapter" / "adapter_config.json").write_text("{}\n")
    for subject in ("base", "base-3shot"):
        shutil.copytree(EVALUATIONS / subject, layout.evaluations(locations.project_dir(project)) / subject)
    own = layout.evaluations(run_dir)
    own.mkdir()
    for name in (layout.EVAL_RESULTS, layout.EVAL_GENERATIONS):
        (own / name).write_text((EVALUATIONS / "run" / name).read_text(encoding="utf-8").replace("RUN", run_id),
                                encoding="utf-8")
    return run_dir


def recorded_eval_job(project: str = "demo", job_id: str = "20261130-192857-eval") -> Path:
    """The recorded evaluation job (the base and its 3-shot baseline on the demo) as run `job_id`."""
    run_dir = locations.run_dir(project, job_id)
    run_dir.mkdir(parents=True)
    home = str(locations.project_dir(project))
    for name in ("job.toml", "events.jsonl"):
        text = (RUNS / "eval" / name).read_text(encoding="utf-8")
        (run_dir / name).write_text(text.replace("PROJECT", home).replace("20261130-192857-eval", job_id),
                                    encoding="utf-8")
    return run_dir
