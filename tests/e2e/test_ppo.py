"""PPO end to end: the real worker on the tiny model, driven through the CLI.

The tiny random model spreads its probability over 49k tokens, so no reward can move it in a
few PPO iterations. A short full SFT first teaches it to answer "yes." or "no." (half each);
PPO with a reward for "yes" must then raise the share of yes, which only the policy update can do.
"""

from __future__ import annotations

import json
import math

import pytest

from tests.e2e.conftest import cli, events, of_type, wait_for, write_jsonl
from workbench import locations
from workbench import project as projects
from workbench.data.importer import import_file
from workbench.jobs import store
from workbench.run import events as ev
from workbench.run.layout import latest_checkpoint

pytestmark = pytest.mark.e2e

YES_NO = [{"messages": [{"role": "user", "content": f"Question {i}?"},
                        {"role": "assistant", "content": "yes." if i % 2 else "no."}]} for i in range(40)]
PAIRS = [{"prompt": f"Question {i}?", "chosen": "yes.", "rejected": "no."} for i in range(12)]
REWARD_FILE = '''
def says_yes(prompts, completions, **kwargs):
    """1 for an answer that says yes, else 0 (the completions of chat prompts are message lists)."""
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [1.0 if "yes" in t.lower() else 0.0 for t in texts]
'''
METRICS = ("reward", "reward_std", "kl", "kl_coef", "policy_loss", "value_loss", "clipfrac", "value_clipfrac",
           "entropy", "approx_kl", "advantage_mean", "returns_mean", "value_mean", "completion_length", "stopped")
PPO = ["--method", "ppo", "--dataset", "yesno", "--set", "max_new_tokens=6", "--set", "logging_steps=1"]


@pytest.fixture(scope="module")
def yes_no(e2e_home, tiny_model, tmp_path_factory) -> dict:
    """A project whose base answers yes or no after 30 steps of full SFT, and a reward file."""
    folder = tmp_path_factory.mktemp("ppo")
    projects.create("yesno", base_model=str(tiny_model))
    import_file("yesno", write_jsonl(folder / "yesno.jsonl", YES_NO))
    result = cli("train", "yesno", "--wait", "--set", "mode=full", "--set", "max_steps=30",
                 "--set", "learning_rate=1e-2", "--set", "scheduler=constant", "--set", "warmup=0",
                 "--set", "batch_size=4", "--set", "eval_steps=0", "--set", "eval_fraction=0",
                 "--set", "save_steps=100", timeout=900)
    assert result.returncode == 0, result.stderr
    reward_file = folder / "rewards.py"
    reward_file.write_text(REWARD_FILE)
    return {"project": "yesno", "sft": result.stdout.splitlines()[0].strip(), "reward_file": str(reward_file),
            "folder": folder}


def start_ppo(setup: dict, *args: str, wait: bool = True) -> str:
    result = cli("train", setup["project"], *PPO, "--base", f"run:{setup['sft']}",
                 "--set", f"reward_file={setup['reward_file']}", *args, *(["--wait"] if wait else []),
                 timeout=1200)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[0].strip()


def test_ppo_raises_the_share_of_rewarded_answers(yes_no):
    run_id = start_ppo(yes_no, "--set", "mode=full", "--set", "learning_rate=5e-4", "--set", "max_steps=20",
                       "--set", "batch_size=16", "--set", "mini_batch_size=8", "--set", "rewards=says_yes",
                       "--set", "save_steps=10")
    got = events(yes_no["project"], run_id)
    begin = of_type(got, ev.TrainBegin)[0]
    assert (begin.total_steps, begin.train_records) == (20, 40)
    assert begin.trainable_params == begin.total_params  # full: every weight and the value head

    logs = of_type(got, ev.Log)
    assert [log.step for log in logs] == list(range(1, 21))
    for log in logs:
        assert set(METRICS) <= set(log.metrics), log.metrics.keys()
        numbers = [log.loss, log.grad_norm, log.tokens_per_s, *log.metrics.values()]
        assert all(math.isfinite(x) for x in numbers), log
    rewards = [log.metrics["reward"] for log in logs]
    first, last = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
    print(f"mean reward, first 5 iterations {first:.3f}, last 5 {last:.3f}")
    assert last > first + 0.15, rewards
    assert of_type(got, ev.Sample) and all(s.prompt.startswith("user: Question") for s in of_type(got, ev.Sample))

    run_dir = locations.run_dir(yes_no["project"], run_id)
    assert [c.step for c in of_type(got, ev.Checkpoint)] == [10, 20]
    finished = of_type(got, ev.Finished)[-1]
    assert (finished.reason, finished.step, finished.output) == ("completed", 20, str(run_dir / "model"))
    assert (run_dir / "model" / "config.json").exists()


def test_ppo_scores_with_a_reward_model_run_and_exports_its_adapter(yes_no):
    project, folder = yes_no["project"], yes_no["folder"]
    import_file(project, write_jsonl(folder / "prefs.jsonl", PAIRS))
    result = cli("train", project, "--method", "reward", "--dataset", "prefs", "--wait", "--set", "max_steps=2",
                 "--set", "batch_size=4", "--set", "eval_steps=0", "--set", "eval_fraction=0")
    assert result.returncode == 0, result.stderr
    reward_run = result.stdout.splitlines()[0].strip()

    run_id = start_ppo(yes_no, "--set", f"reward_model={reward_run}", "--set", "rewards=says_yes:0.5",
                       "--set", "max_steps=3", "--set", "batch_size=4", "--set", "mini_batch_size=2",
                       "--set", "ppo_epochs=2", "--set", "learning_rate=1e-3")
    got = events(project, run_id)
    assert of_type(got, ev.Finished)[-1].reason == "completed"
    logs = of_type(got, ev.Log)
    assert [log.step for log in logs] == [1, 2, 3]
    for log in logs:  # the total is the reward model's score plus half the rule's
        parts = log.metrics["reward/reward_model"], log.metrics["reward/says_yes"]
        assert all(math.isfinite(x) for x in parts)
        assert log.metrics["reward"] == pytest.approx(parts[0] + 0.5 * parts[1], abs=1e-5)
    assert len({log.metrics["reward/reward_model"] for log in logs}) > 1  # scores of the samples, not a constant
    samples = of_type(got, ev.Sample)  # step 1: the batch's four completions, each judged by both rewards
    assert [s.step for s in samples] == [1] * 4
    for s in samples:
        assert s.scores["says_yes"] == (0.5 if "yes" in s.completion.lower() else 0.0)
        assert s.reward == pytest.approx(s.scores["reward_model"] + s.scores["says_yes"])
        assert math.isfinite(s.advantage)
    step_1 = logs[0].metrics
    assert sum(s.reward for s in samples) / 4 == pytest.approx(step_1["reward"], abs=1e-5)

    run_dir = locations.run_dir(project, run_id)
    config = json.loads((run_dir / "adapter" / "adapter_config.json").read_text())
    assert config["task_type"] == "CAUSAL_LM"
    exported = cli("export", project, run_id, "--format", "lora")
    assert exported.returncode == 0, exported.stderr
    assert (locations.exports_dir(project, run_id) / "lora" / "adapter_model.safetensors").exists()


def test_a_reward_model_must_be_a_reward_run(yes_no):
    from workbench.rewards import RewardError
    from workbench.rewards.model import reward_model_folder

    with pytest.raises(RewardError, match="is a sft run, not a reward model"):
        reward_model_folder(yes_no["project"], yes_no["sft"])
    with pytest.raises(RewardError, match="Reward model 'no-such-run': Model 'no-such-run' does not exist"):
        reward_model_folder(yes_no["project"], "no-such-run")
    result = cli("train", yes_no["project"], *PPO, "--set", "reward_model=no-such-run", "--wait")
    assert result.returncode != 0 and "Reward model 'no-such-run': Model 'no-such-run' does not exist" in result.stderr
    error = of_type(events(yes_no["project"], result.stdout.splitlines()[0].strip()), ev.Error)[-1]
    assert error.kind == "bad_spec" and "no-such-run" in error.message


def test_stop_saves_a_checkpoint_and_resume_continues_from_it(yes_no):
    project = yes_no["project"]
    run_id = start_ppo(yes_no, "--set", "rewards=says_yes", "--set", "max_steps=24", "--set", "batch_size=4",
                       "--set", "mini_batch_size=2", "--set", "save_steps=1000", "--set", "learning_rate=1e-3",
                       wait=False)
    wait_for(lambda: store.get(project, run_id).step >= 2, what="PPO step 2")
    assert cli("stop", project, run_id, "--wait").returncode == 0
    info = store.get(project, run_id)
    assert info.state == "stopped" and info.resumable
    stopped_at = info.step
    assert 2 <= stopped_at < 24
    checkpoint = latest_checkpoint(info.path)
    assert checkpoint.name == f"checkpoint-{stopped_at}"
    assert {"adapter_model.safetensors", "value_head.pt", "optimizer.pt", "rng_state.pth"} <= \
        {p.name for p in checkpoint.iterdir()}
    saved_coef = json.loads((checkpoint / "trainer_state.json").read_text())["kl_coef"]

    resumed = cli("resume", project, run_id, "--wait", timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    got = events(project, run_id)
    restarts = [i for i, e in enumerate(got) if isinstance(e, ev.Started)]
    assert len(restarts) == 2 and got[restarts[1]].resumed_from == str(checkpoint)
    before, after = of_type(got[:restarts[1]], ev.Log), of_type(got[restarts[1]:], ev.Log)
    assert [log.step for log in before] == list(range(1, stopped_at + 1))
    assert [log.step for log in after] == list(range(stopped_at + 1, 25))  # no iteration redone, none skipped
    assert after[0].metrics["kl_coef"] == pytest.approx(saved_coef, rel=1e-12) and saved_coef != 0.05
    assert store.get(project, run_id).state == "completed"
