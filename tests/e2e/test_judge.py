"""A judge model ranks a sampling session in the real worker: its rankings are committed like a
person's, marked `judge:<model>`, ordered by the grades the judge gives."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import cli, events, of_type, wait_for
from workbench import locations
from workbench.jobs import store
from workbench.ranking import candidates as cands
from workbench.ranking import judge_params
from workbench.ranking import rankings as ranking
from workbench.run import events as ev

pytestmark = pytest.mark.e2e


def test_a_judge_ranks_every_group_of_a_session(tiny_project, tiny_model):
    result = cli("sample", tiny_project, "--prompt", "Name a river.", "--prompt", "Name a tree.",
                 "--prompt", "Name a bird.", "--dataset", "prompts", "--set", "n=3", "--set", "ahead=2",
                 "--set", "max_new_tokens=6", "--set", "idle_minutes=3")
    assert result.returncode == 0, result.stderr
    session = result.stdout.splitlines()[0].strip()
    session_dir = locations.run_dir(tiny_project, session)
    wait_for(lambda: len(cands.read_groups(session_dir)) == 2, what="two groups ahead")

    # The judge follows the paused sampler: its rankings let the sampler go on to the third prompt.
    result = cli("judge", tiny_project, "--set", "judge_model=base", "--wait")
    assert result.returncode == 0, result.stderr
    judge_run = result.stdout.splitlines()[0].strip()
    assert store.wait(tiny_project, session, timeout=120).state == "completed"

    by = f"judge:{tiny_model.name}"
    records = [r for r in ranking.read(tiny_project) if r["session"] == session]
    assert sorted(r["index"] for r in records) == [0, 1, 2]
    assert {r["by"] for r in records} == {by}
    assert ranking.done_indices(tiny_project, session) == {0, 1, 2}
    assert ranking.done_indices(tiny_project, session, by="person") == set()
    logs = of_type(events(tiny_project, judge_run), ev.Log)
    assert [log.step for log in logs] == [1, 2, 3] and all(1 <= log.metrics["mean_grade"] <= 10 for log in logs)

    # The committed order is the order of the judge's grades, recomputed here with the same model.
    from workbench.ranking.judge import Judge, order_by_score, render_prompt

    judge = Judge(tiny_model, "float32", "cpu")
    template = judge_params.judging_template(tiny_project)
    for record in records:
        grades = [judge.grade(judge_params.fill(template, render_prompt(record["prompt"]), c["text"]))
                  for c in record["candidates"]]
        assert all(1 <= g <= 10 for g in grades)
        assert (record["ranking"], record["tied"]) == order_by_score(grades)
        assert record["candidates"] == cands.latest_groups(session_dir)[record["index"]]["candidates"]

    # A second judge run of the same session finds nothing left for this judge.
    again = cli("judge", tiny_project, "--set", "judge_model=base", "--set", f"session={session}", "--wait")
    assert again.returncode == 0, again.stderr
    assert len([r for r in ranking.read(tiny_project) if r["session"] == session]) == 3


def test_a_judge_needs_a_model_and_a_template_with_its_placeholders(tiny_project):
    result = cli("judge", tiny_project)
    assert result.returncode == 1 and "judge model" in result.stderr
    bad = locations.project_dir(tiny_project) / "bad.txt"
    bad.write_text("Grade {answer} from 1 to 10.")
    result = cli("judge", tiny_project, "--set", "judge_model=base", "--set", f"template_file={bad}")
    assert result.returncode == 1 and "lacks {prompt}" in result.stderr
    result = cli("judge", tiny_project, "--set", "judge_model=base")
    assert result.returncode == 1 and "no sampling session" in result.stderr
