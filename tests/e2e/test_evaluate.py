"""Held-out evaluation on the tiny model: the base scores nothing, the tuned run scores what it learnt."""

from __future__ import annotations

import tomllib

import pytest

from tests.e2e.conftest import ANSWER
from workbench import locations
from workbench import project as projects
from workbench.cli.main import main
from workbench.evaluate.heldout import MAX_NEW_TOKENS, evaluate

pytestmark = pytest.mark.e2e


def test_base_and_adapter_answers_are_scored_and_written_next_to_them(lora_run):
    project, run_id, _ = lora_run
    base = evaluate(project, limit=4)
    assert base["eval"]["run"] == "base" and base["eval"]["records"] == 4
    assert base["path"] == str(locations.project_dir(project) / "eval-base.toml")
    assert base["eval"]["json_valid"] == 0.0 and base["eval"]["field_accuracy"] == 0.0  # random weights

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(projects.load(project).base_model)
    for record in base["records"]:
        assert record["reference"] == ANSWER and record["prompt"].startswith("Catalogue item")
        assert len(tokenizer(record["answer"], add_special_tokens=False)["input_ids"]) <= MAX_NEW_TOKENS + 2

    lora = evaluate(project, run_id, limit=4)
    assert lora["path"] == str(locations.run_dir(project, run_id) / "eval.toml")
    assert lora["eval"]["model"].endswith(f"{run_id}/adapter")
    assert [r["answer"] for r in lora["records"]] != [r["answer"] for r in base["records"]]  # the adapter is applied


def test_a_run_that_learnt_the_task_scores_it(full_run, capsys):
    project, run_id = full_run
    assert main(["eval", project, run_id]) == 0
    out = capsys.readouterr().out
    path = locations.run_dir(project, run_id) / "eval.toml"
    assert out.strip().splitlines()[-1] == str(path)
    assert f"{project} {run_id}" in out and "on 6 held-out record(s): JSON valid 100%" in out
    report = tomllib.loads(path.read_text())
    assert report["eval"]["records"] == 6 and report["eval"]["model"].endswith(f"{run_id}/model")
    assert report["eval"]["json_valid"] == 1.0 and report["eval"]["fields"] == {"kind": 1.0, "ok": 1.0}
    assert report["eval"]["exact_match"] == 1.0 and report["eval"]["field_accuracy"] == 1.0
    assert [r["answer"] for r in report["records"]] == [ANSWER] * 6

    again = evaluate(project, run_id, limit=2, batch_size=1)  # greedy: the same answers, whatever the batching
    assert [r["answer"] for r in again["records"]] == [ANSWER] * 2


def test_eval_of_a_run_that_does_not_exist(lora_run, capsys):
    project, _, _ = lora_run
    assert main(["eval", project, "no-such-run"]) == 1
    assert "has no run 'no-such-run'" in capsys.readouterr().err
