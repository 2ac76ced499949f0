"""Answers marked good or bad on the ranking screen train a KTO run: the marks log, its dataset, the real worker."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import cli, events, of_type
from workbench import project as projects
from workbench.ranking import labels as marks
from workbench.run import events as ev

pytestmark = pytest.mark.e2e


def test_kto_trains_on_the_answers_marked_while_ranking(home, tiny_model):
    projects.create("marks", base_model=str(tiny_model))
    for i in range(6):
        prompt = [{"role": "user", "content": f"What is {i} plus one?"}]
        for card, (answer, good) in enumerate(((f"{i} plus one is {i + 1}.", True), ("I do not know.", False))):
            marks.commit("marks", marks.make_mark(prompt, answer, good, "session-1", i, 0, card))
    marks.commit("marks", marks.make_mark("Taken back?", "Yes.", True, "session-1", 6, 0, 0))
    marks.commit("marks", marks.make_mark("Taken back?", "Yes.", None, "session-1", 6, 0, 0))
    assert marks.labels_as_dataset("marks") == (6, 6)

    result = cli("train", "marks", "--method", "kto", "--dataset", marks.DATASET, "--wait", "--set", "batch_size=4",
                 "--set", "max_length=64", "--set", "warmup=0", "--set", "max_steps=2", "--set", "eval_steps=0",
                 "--set", "eval_fraction=0")
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.splitlines()[0].strip()
    got = events("marks", run_id)
    assert of_type(got, ev.Finished)[-1].reason == "completed"
    begin = of_type(got, ev.TrainBegin)[0]
    assert begin.train_records == 12  # every mark standing, none taken back
    assert all("rewards/margins" in e.metrics for e in of_type(got, ev.Log) if "loss" in e.metrics)
