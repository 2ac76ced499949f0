"""Tasks of the LM Evaluation Harness (optional) inside an evaluation job, on the tiny model: a task defined on
the project's own files, its accuracy against the definition computed here, refusals in one line."""

from __future__ import annotations

import json
import math

import pytest

from tests.e2e.conftest import cli, make_constant_project
from workbench import locations
from workbench.evaluate import harness, results
from workbench.evaluate.results import Subject

pytestmark = pytest.mark.e2e

CHOICES = ["book", "film", "map"]
DOCS = [{"question": f"Item {i} of the catalogue is a", "answer": CHOICES[i % 3]} for i in range(5)]
TASK = """\
task: catalogue_kind
dataset_path: json
dataset_kwargs:
  data_files:
    test: lm-eval/kinds.jsonl
test_split: test
output_type: multiple_choice
doc_to_text: "{{question}}"
doc_to_choice: ["book", "film", "map"]
doc_to_target: "{{['book', 'film', 'map'].index(answer)}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""


def write_task(project: str) -> None:
    folder = harness.task_folder(project)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kinds.yaml").write_text(TASK)
    (folder / "kinds.jsonl").write_text("".join(json.dumps(d) + "\n" for d in DOCS))


def expected_accuracy(model_path) -> float:
    """acc by its definition: the choice whose tokens (after a space, following the question) the model finds
    likeliest, summed over their log-probabilities, is the target."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_path).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    right = 0
    for doc in DOCS:
        context = tokenizer(doc["question"], add_special_tokens=False).input_ids  # the harness adds no BOS
        scores = []
        for choice in CHOICES:
            whole = tokenizer(doc["question"] + " " + choice, add_special_tokens=False).input_ids
            continuation = whole[len(context):]
            with torch.no_grad():
                logits = model(torch.tensor([context + continuation])).logits[0].log_softmax(-1)
            scores.append(sum(logits[len(context) - 1 + k, t].item() for k, t in enumerate(continuation)))
        right += max(range(3), key=lambda i: scores[i]) == CHOICES.index(doc["answer"])
    return right / len(DOCS)


@pytest.mark.skipif(not harness.installed(), reason="lm-eval is optional and not installed here")
def test_a_task_on_the_project_files_is_scored_with_the_base(home, tiny_model, tmp_path):
    project = make_constant_project("harness", tiny_model, tmp_path)
    write_task(project)
    result = cli("eval", project, "--lm-eval", "catalogue_kind", "--max-new-tokens", "4")
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("lm-eval catalogue_kind acc"))
    found = results.read(project, Subject())
    assert found["lm_eval"]["catalogue_kind"]["version"]
    acc = found["metrics"]["lm_eval"]["catalogue_kind acc"]
    assert math.isclose(acc, expected_accuracy(tiny_model), abs_tol=1e-6)
    assert row.split()[-1] == f"{acc:.4g}"

    again = cli("eval", project, "--lm-eval", "catalogue_kind", "--max-new-tokens", "4")
    assert again.stdout.startswith("Every result is up to date")
    (harness.task_folder(project) / "kinds.yaml").write_text(TASK.replace("acc\n", "acc_norm\n"))
    edited = cli("eval", project, "--lm-eval", "catalogue_kind", "--max-new-tokens", "4")
    assert edited.returncode == 0, edited.stderr  # an edited task file is taken again
    assert "catalogue_kind acc_norm" in results.read(project, Subject())["metrics"]["lm_eval"]


@pytest.mark.skipif(not harness.installed(), reason="lm-eval is optional and not installed here")
def test_a_task_that_is_nowhere_is_refused_before_a_job(home, tiny_model, tmp_path):
    project = make_constant_project("nowhere", tiny_model, tmp_path)
    runs = locations.runs_dir(project)
    for args, words in ((("--lm-eval", "no_such_task_here"), "lm-eval has no task 'no_such_task_here'"),
                        (("--lm-eval", str(tmp_path / "missing.yaml")), "missing.yaml does not exist")):
        result = cli("eval", project, *args)
        assert result.returncode == 1 and words in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert not runs.exists() or not any(runs.iterdir())


def test_without_the_package_the_option_is_refused_in_one_line(home, tiny_model, tmp_path, monkeypatch):
    from workbench.evaluate import job as eval_job
    from workbench.evaluate.heldout import EvalError

    project = make_constant_project("bare", tiny_model, tmp_path)
    monkeypatch.setattr(harness, "installed", lambda: False)
    with pytest.raises(EvalError, match=r"needs the LM Evaluation Harness, which is not installed: pip install"):
        eval_job.plan(project, lm_eval=["catalogue_kind"])
    assert eval_job.plan(project)["lm_eval"] == {}  # nothing asked, nothing needed
