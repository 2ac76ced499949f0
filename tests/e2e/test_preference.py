"""Reward model and DPO runs end to end on preference pairs, and DPO on committed rankings."""

from __future__ import annotations

import math

import pytest

from tests.e2e.conftest import cli, events, of_type, write_jsonl
from workbench import locations
from workbench import project as projects
from workbench.data.importer import import_file
from workbench.ranking import rankings as ranking
from workbench.run import events as ev

pytestmark = pytest.mark.e2e

PAIRS = [{"prompt": f"What is {i} plus one?", "chosen": f"{i} plus one is {i + 1}.", "rejected": "I do not know."}
         for i in range(30)]
SHORT = ["--wait", "--set", "max_steps=4", "--set", "batch_size=4", "--set", "eval_steps=0",
         "--set", "max_length=64", "--set", "save_steps=100"]


@pytest.fixture
def pair_project(home, tiny_model, tmp_path) -> str:
    projects.create("pairs", base_model=str(tiny_model))
    import_file("pairs", write_jsonl(tmp_path / "prefs.jsonl", PAIRS))
    return "pairs"


def train(project: str, method: str, *extra: str) -> tuple[str, list[ev.Event]]:
    result = cli("train", project, "--method", method, *SHORT, *extra)
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.splitlines()[0].strip()
    got = events(project, run_id)
    assert of_type(got, ev.Finished)[-1].reason == "completed"
    assert (locations.run_dir(project, run_id) / "adapter" / "adapter_config.json").exists()
    return run_id, got


def test_reward_model_reports_pair_accuracy_on_held_out_pairs(pair_project):
    run_id, got = train(pair_project, "reward")
    begin = of_type(got, ev.TrainBegin)[0]
    assert (begin.train_records, begin.eval_records) == (27, 3)
    assert [log.step for log in of_type(got, ev.Log)] == [1, 2, 3, 4]
    final = of_type(got, ev.Eval)[-1]
    assert final.step == 4 and math.isfinite(final.loss)
    assert 0.0 <= final.metrics["accuracy"] <= 1.0
    adapter = locations.run_dir(pair_project, run_id) / "adapter"
    assert "score" in (adapter / "adapter_config.json").read_text()  # the head is saved with the adapter


def test_two_reward_runs_of_one_spec_train_the_same(pair_project):
    """The score head the base lacks starts from the seed, so a reward run can be repeated exactly."""
    losses = [[log.loss for log in of_type(train(pair_project, "reward")[1], ev.Log)] for _ in range(2)]
    assert losses[0] == losses[1]


def test_dpo_streams_reward_margins_and_pair_samples(pair_project):
    _, got = train(pair_project, "dpo", "--set", "sample_every=2", "--set", "sample_count=3",
                   "--set", "learning_rate=1e-3")
    logs = of_type(got, ev.Log)
    assert [log.step for log in logs] == [1, 2, 3, 4]
    assert all(math.isfinite(log.loss) and "rewards/margins" in log.metrics for log in logs)
    assert "rewards/accuracies" in logs[-1].metrics
    assert "rewards/margins" in of_type(got, ev.Eval)[-1].metrics

    # steps 1, 2 and 4 show three training pairs each, as written, with each answer's log-ratio
    samples = of_type(got, ev.Sample)
    assert [s.step for s in samples] == [1] * 3 + [2] * 3 + [4] * 3
    pairs = {(p["prompt"], p["chosen"], p["rejected"]) for p in PAIRS}
    assert all((s.prompt, s.completion, s.rejected) in pairs for s in samples)
    assert len({s.prompt for s in samples}) == 9  # the next pairs each time
    assert all(math.isfinite(s.chosen_logratio) and math.isfinite(s.rejected_logratio) for s in samples)
    assert any(s.chosen_logratio != 0.0 for s in samples if s.step == 4)  # the policy has left the reference


def test_dpo_trains_on_committed_rankings(home, tiny_model):
    projects.create("ranked", base_model=str(tiny_model))
    for i in range(6):
        candidates = [{"text": f"{i} and one make {i + 1}.", "source": "base"},
                      {"text": "Perhaps.", "source": "run-a"},
                      {"text": f"It is {i + 2}.", "source": "run-b"},
                      {"text": "No idea.", "source": "run-a"}]
        ranking.commit("ranked", ranking.make_record(f"What is {i} plus one?", candidates, [0, 2], tied=[1, 3]))
    ranking.commit("ranked", ranking.make_record("Skipped.", candidates, [], skipped=True))
    assert ranking.rankings_as_dataset("ranked") == 6 * 5
    entry = projects.load("ranked").dataset("rankings")
    assert (entry.kind, entry.split, entry.records) == ("ranked", "train", 6)  # one record per ranking

    _, got = train("ranked", "dpo")
    begin = of_type(got, ev.TrainBegin)[0]
    assert (begin.train_records, begin.eval_records) == (30, 0)  # the skipped ranking gave no pair
    assert all("rewards/margins" in log.metrics for log in of_type(got, ev.Log))


def test_dpo_leaves_out_the_pairs_preferring_an_answer_the_token_limit_cut_and_says_so(home, tiny_model):
    projects.create("cut", base_model=str(tiny_model))
    for i in range(6):
        candidates = [{"text": f"{i} and one make {i + 1}.", "source": "base"},
                      {"text": "Perhaps.", "source": "base"},
                      ranking.candidate(f"It is {i + 2} because", "base", cut=True),  # ended by the token limit
                      {"text": "No idea.", "source": "base"}]
        ranking.commit("cut", ranking.make_record(f"What is {i} plus one?", candidates, [0, 2], tied=[1, 3]))
    assert ranking.rankings_as_dataset("cut") == 6 * 5  # the dataset keeps every pair, and the cut mark
    line = projects.load("cut").dataset_path("rankings").read_text().splitlines()[0]
    assert '"cut": [1]' in line  # the cut answer is second in the record's order (ranked 0, 2, then 1, 3)

    run_id, got = train("cut", "dpo")
    begin = of_type(got, ev.TrainBegin)[0]
    assert (begin.train_records, begin.eval_records) == (6 * 3, 0)  # 2 > 1 and 2 > 3 left out of each
    spec = (locations.run_dir("cut", run_id) / "job.toml").read_text()
    assert ("12 of 30 preference pairs left out: their preferred answer was cut by the token limit "
            "(cut_answers=keep trains on them).") in spec
    assert any(isinstance(e, ev.Status) and e.message.startswith("12 of 30 preference pairs left out") for e in got)
