"""GRPO and RLOO end to end in the real worker on the tiny model, and the rewards dry run through the CLI."""

from __future__ import annotations

import json
import math

import pytest

from tests.e2e.conftest import cli, events, of_type, write_jsonl
from workbench import locations
from workbench import project as projects
from workbench.data.importer import import_file
from workbench.rewards import load_rewards
from workbench.rewards.scoring import judge
from workbench.run import events as ev

pytestmark = pytest.mark.e2e

PROMPTS = [{"prompt": f"Say something about {i}.", "answer": str(i)} for i in range(16)]
CHATS = [{"messages": [{"role": "user", "content": f"What is {i} plus one?"},
                       {"role": "assistant", "content": f"{i + 1}"}]} for i in range(8)]
PAIRS = [{"prompt": f"What is {i} plus one?", "chosen": f"{i + 1}.", "rejected": "I do not know."} for i in range(12)]
USER_REWARDS = '''
def picky(prompts, completions, answer, **kwargs):
    """Fails on the records whose answer is odd: the run must go on and say so."""
    scores = []
    for completion, expected in zip(completions, answer):
        if int(expected) % 2:
            raise ValueError(f"cannot judge {expected}")
        scores.append(1.0)
    return scores
'''


def run_ok(project: str, *args: str) -> tuple[str, list[ev.Event]]:
    result = cli("train", project, "--wait", *args, timeout=900)
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.splitlines()[0].strip()
    got = events(project, run_id)
    finished = of_type(got, ev.Finished)
    assert finished and finished[-1].reason == "completed", [e for e in got if isinstance(e, (ev.Error, ev.Status))]
    return run_id, got


@pytest.fixture
def rl_project(home, tiny_model, tmp_path) -> str:
    projects.create("rl", base_model=str(tiny_model))
    import_file("rl", write_jsonl(tmp_path / "prompts.jsonl", PROMPTS))
    return "rl"


def test_grpo_streams_rewards_and_raises_a_length_reward(rl_project):
    """Completions of 8 random tokens are 30-50 characters; length_max=30 scores them low. Full
    training at a high rate lets the tiny model find short tokens within 18 steps."""
    run_id, got = run_ok(rl_project, "--method", "grpo", "--set", "mode=full", "--set", "learning_rate=0.1",
                         "--set", "scheduler=constant", "--set", "max_steps=18", "--set", "batch_size=8",
                         "--set", "num_generations=4", "--set", "max_completion_length=8",
                         "--set", "rewards=length", "--set", "length_max=30", "--set", "save_steps=100")
    logs = of_type(got, ev.Log)
    assert [log.step for log in logs] == list(range(1, 19))
    for log in logs:
        for key in ("reward", "reward_std", "rewards/length/mean", "completions/mean_length", "entropy"):
            assert math.isfinite(log.metrics[key]), (log.step, key)
    rewards = [log.metrics["reward"] for log in logs]
    first, last = sum(rewards[:4]) / 4, sum(rewards[-4:]) / 4
    print(f"GRPO length reward, first 4 steps {first:.3f}, last 4 steps {last:.3f}: {[round(r, 3) for r in rewards]}")
    assert last > first + 0.3
    assert (locations.run_dir(rl_project, run_id) / "model" / "config.json").exists()


def test_grpo_samples_carry_each_reward_s_score_and_the_trainer_s_advantage(rl_project):
    """The sample events hold completions the trainer sampled: scoring their text again with the reward
    library gives the same weighted scores, and TRL's group advantage follows from their totals."""
    _, got = run_ok(rl_project, "--method", "grpo", "--set", "max_steps=3", "--set", "batch_size=8",
                    "--set", "num_generations=4", "--set", "max_completion_length=8", "--set", "save_steps=100",
                    "--set", "rewards=length:2,regex:0.5", "--set", "length_max=30", "--set", "regex=[aeiou]{2}",
                    "--set", "sample_every=2", "--set", "sample_count=2")
    samples = of_type(got, ev.Sample)
    assert [s.step for s in samples] == [1] * 8 + [2] * 8  # two groups of four at step 1 and step 2
    rewards = load_rewards("length:2,regex:0.5", options={"length_max": 30, "regex": "[aeiou]{2}"})
    for s in samples:
        again = judge(rewards, [s.prompt], [s.completion]).judged(0)
        assert s.scores == pytest.approx(again.scores) and s.reward == pytest.approx(again.total)
        assert s.errors == {}
    spread = 0
    for group in sorted({s.group for s in samples}):
        members = [s for s in samples if s.group == group]
        assert len(members) == 4 and len({s.prompt for s in members}) == 1
        totals = [s.reward for s in members]
        mean = sum(totals) / 4
        std = math.sqrt(sum((t - mean) ** 2 for t in totals) / 3)  # scale_rewards=group: unbiased std
        for s, t in zip(members, totals):
            assert s.advantage == pytest.approx((t - mean) / (std + 1e-4), abs=1e-4)
        spread += std > 0
    assert spread  # some group's completions scored differently, so advantages were not all 0


def test_grpo_on_chat_data_reports_a_failing_user_reward_once_counts_it_and_goes_on(home, tiny_model, tmp_path):
    projects.create("chatrl", base_model=str(tiny_model))
    import_file("chatrl", write_jsonl(tmp_path / "chats.jsonl", CHATS))
    (locations.project_dir("chatrl") / "my_rewards.py").write_text(USER_REWARDS)
    _, got = run_ok("chatrl", "--method", "grpo", "--set", "max_steps=3", "--set", "batch_size=4",
                    "--set", "num_generations=2", "--set", "max_completion_length=6", "--set", "learning_rate=1e-3",
                    "--set", "rewards=picky:1,exact:0.5", "--set", "reward_file=my_rewards.py",
                    "--set", "save_steps=100", "--set", "sample_every=1", "--set", "sample_count=2")
    warnings = [s.message for s in of_type(got, ev.Status) if s.message.startswith("Warning: reward 'picky'")]
    assert len(warnings) == 1, warnings  # shown once, then counted
    assert "ValueError: cannot judge" in warnings[0] and "on record" in warnings[0]
    logs = of_type(got, ev.Log)
    assert len(logs) == 3
    assert all(math.isfinite(log.metrics["rewards/picky/mean"]) for log in logs)
    assert all(log.metrics["rewards/exact/mean"] == 0.0 for log in logs)  # the random model never says "3"

    # two groups of two are the whole batch: every completion is a sample, with picky's error where it raised
    samples = of_type(got, ev.Sample)
    assert [s.step for s in samples] == [1] * 4 + [2] * 4 + [3] * 4
    failed = 0
    for sample, log in zip([samples[i:i + 4] for i in range(0, 12, 4)], logs):
        for s in sample:
            expected = int(s.prompt.removeprefix("user: What is ").removesuffix(" plus one?")) + 1
            if expected % 2:
                assert s.errors == {"picky": f"ValueError: cannot judge {expected}"} and "picky" not in s.scores
                failed += 1
            else:
                assert s.errors == {} and s.scores["picky"] == 1.0
            assert s.reward == pytest.approx(sum(s.scores.values()))
        assert log.metrics.get("reward_errors/picky", 0.0) == failed  # the completions it failed on so far
    assert failed > 0


def test_grpo_refuses_a_reward_whose_column_is_missing(rl_project):
    result = cli("train", rl_project, "--method", "grpo", "--wait", "--set", "rewards=code", "--set", "max_steps=1",
                 "--set", "batch_size=4", "--set", "num_generations=2")
    run_id = result.stdout.splitlines()[0].strip()
    errors = of_type(events(rl_project, run_id), ev.Error)
    assert errors and "dataset column 'tests'" in errors[-1].message and "answer" in errors[-1].message


def test_rloo_trains_on_a_reward_run_and_the_dry_run_scores_alike(rl_project, tmp_path):
    import_file(rl_project, write_jsonl(tmp_path / "prefs.jsonl", PAIRS))
    reward_id, _ = run_ok(rl_project, "--method", "reward", "--dataset", "prefs", "--set", "max_steps=2",
                          "--set", "batch_size=4", "--set", "eval_steps=0", "--set", "max_length=64",
                          "--set", "save_steps=100")
    _, got = run_ok(rl_project, "--method", "rloo", "--dataset", "prompts", "--set", f"reward_model=run:{reward_id}",
                    "--set", "max_steps=2", "--set", "batch_size=4", "--set", "num_generations=2",
                    "--set", "max_completion_length=6", "--set", "save_steps=100")
    logs = of_type(got, ev.Log)
    assert len(logs) == 2
    for log in logs:
        assert math.isfinite(log.loss)
        assert math.isfinite(log.metrics["rewards/reward_model/mean"]) and math.isfinite(log.metrics["kl"])
    samples = of_type(got, ev.Sample)  # step 1: the two groups of two of the batch, with RLOO's advantages
    assert [(s.step, s.group) for s in samples] == [(1, 0), (1, 0), (1, 1), (1, 1)]
    assert all(math.isfinite(s.scores["reward_model"]) and s.reward == s.scores["reward_model"] for s in samples)
    assert all(s.advantage is not None and math.isfinite(s.advantage) for s in samples)

    # the dry run scores with the same merged model: the same text gets the same score as the LoRA model
    done = cli("rewards", rl_project, "--method", "rloo", "--dataset", "prompts", "--prompts", "1", "--n", "1",
               "--set", f"reward_model=run:{reward_id}", "--completion", "1.", "--json")
    assert done.returncode == 0, done.stderr
    scored = json.loads(done.stdout)["prompts"][0]["rows"][0]["scores"]["reward_model"]
    assert scored == pytest.approx(lora_score(rl_project, reward_id, "Say something about 0.", "1."), abs=1e-4)


def lora_score(project: str, run_id: str, prompt: str, answer: str) -> float:
    """The score of the unmerged LoRA reward model, as its own run would compute it."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    from workbench import models

    adapter = locations.run_dir(project, run_id) / "adapter"
    base = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    tokenizer = models.load_tokenizer(adapter)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    model = PeftModel.from_pretrained(model, adapter).eval()
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    with torch.inference_mode():
        return model(**tokenizer(text, return_tensors="pt", add_special_tokens=False)).logits[0, 0].item()


def test_dry_run_scores_a_given_completion(rl_project):
    done = cli("rewards", rl_project, "--set", "rewards=format:1,exact:2", "--completion", "<think>hm</think> 1",
               "--prompts", "2", "--n", "1", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["rewards"] == [{"name": "format", "weight": 1.0}, {"name": "exact", "weight": 2.0}]
    assert [g["prompt"] for g in report["prompts"]] == ["Say something about 0.", "Say something about 1."]
    assert [g["rows"][0]["total"] for g in report["prompts"]] == [1.0, 3.0]  # only prompt 2 expects "1"
    text = cli("rewards", rl_project, "--set", "rewards=format", "--completion", "no tags", "--prompts", "1")
    assert text.returncode == 0 and "Prompt 1: Say something about 0." in text.stdout and "0.00" in text.stdout
    bad = cli("rewards", rl_project, "--set", "rewards=nope", "--completion", "x")
    assert bad.returncode == 1 and "Unknown reward(s): nope" in bad.stderr


def test_dry_run_samples_from_the_model(rl_project):
    done = cli("rewards", rl_project, "--set", "rewards=length", "--set", "length_unit=tokens",
               "--set", "length_max=4", "--set", "max_completion_length=6", "--prompts", "2", "--n", "3", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["sampled"] and len(report["prompts"]) == 2
    rows = [row for group in report["prompts"] for row in group["rows"]]
    assert len(rows) == 6 and len({row["completion"] for row in rows}) > 1
    # 6 sampled tokens against a maximum of 4: 1 - (6 - 4) / 4 = 0.5, unless the model ended early
    assert all(row["scores"]["length"] >= 0.5 and row["total"] == row["scores"]["length"] for row in rows)


def test_dry_run_reports_a_raising_reward_once_with_its_count(rl_project):
    (locations.project_dir(rl_project) / "my_rewards.py").write_text(USER_REWARDS)
    done = cli("rewards", rl_project, "--set", "rewards=picky:2,length", "--set", "reward_file=my_rewards.py",
               "--completion", "fine", "--prompts", "4", "--n", "2", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["warnings"] == [("reward 'picky' raised ValueError: cannot judge 1 on record 2; it failed on 4 "
                                   "of 8 completions, which score 0.")]
    rows = [(group["index"], row) for group in report["prompts"] for row in group["rows"]]
    for index, row in rows:  # records 2 and 4 expect the odd answers 1 and 3
        if index % 2:
            assert row == {"completion": "fine", "scores": {"picky": 2.0, "length": 1.0}, "total": 3.0, "errors": {}}
        else:
            assert row == {"completion": "fine", "scores": {"length": 1.0}, "total": 1.0,
                           "errors": {"picky": f"ValueError: cannot judge {index - 1}"}}
