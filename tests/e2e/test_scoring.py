"""The scorer child scores answers exactly as the trained reward model does inside TRL's RewardTrainer,
and every user of a reward model (ranking, GRPO/RLOO, PPO, the dry run, the merged export) gives the
same score to the same (prompt, answer)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e.conftest import REPO, cli, write_jsonl
from workbench import locations
from workbench import project as projects
from workbench.data.importer import import_file
from workbench.ranking.scoring import Scorer, ScoringError, latest_reward_run

pytestmark = pytest.mark.e2e

PAIRS = [{"prompt": f"What is {i} plus one?", "chosen": f"{i} plus one is {i + 1}.", "rejected": "I do not know."}
         for i in range(12)]
TRAIN = ["--method", "reward", "--wait", "--set", "max_steps=3", "--set", "batch_size=4", "--set", "eval_steps=0",
         "--set", "max_length=64", "--set", "save_steps=100", "--set", "learning_rate=1e-3"]


@pytest.fixture(scope="module")
def reward_run(tiny_model, tmp_path_factory):
    """(project, run id) of a LoRA reward model trained a few steps on text pairs."""
    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("scoring-home")
        mp.setenv("WORKBENCH_HOME", str(home))
        projects.create("rm", base_model=str(tiny_model))
        import_file("rm", write_jsonl(tmp_path_factory.mktemp("pairs") / "pairs.jsonl", PAIRS))
        result = cli("train", "rm", *TRAIN)
        assert result.returncode == 0, result.stderr
        yield "rm", result.stdout.splitlines()[0].strip()


def trainer_rewards(project: str, run_id: str, pair: dict) -> tuple[float, float]:
    """(r_chosen, r_rejected) computed the way RewardTrainer computes them while training."""
    import torch
    from datasets import Dataset
    from peft import PeftModel
    from trl import RewardConfig, RewardTrainer

    from transformers import AutoModelForSequenceClassification

    from workbench import models
    from workbench.methods.kit.pair_data import pair_rows
    from workbench.run.spec import JobSpec

    run_dir = locations.run_dir(project, run_id)
    spec = JobSpec.load(run_dir)
    tokenizer = models.load_tokenizer(run_dir / "adapter")
    model = AutoModelForSequenceClassification.from_pretrained(models.resolve(spec.model_path), num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    model = PeftModel.from_pretrained(model, run_dir / "adapter").eval()
    trainer = RewardTrainer(model=model, args=RewardConfig(output_dir=str(run_dir / "probe"), report_to="none",
                                                           use_cpu=True, bf16=False),
                            train_dataset=Dataset.from_list(pair_rows([pair], conversational=False).rows),
                            processing_class=tokenizer)
    batch = trainer.data_collator([trainer.train_dataset[0]])
    with torch.inference_mode():
        chosen, rejected = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, 0]
    return float(chosen), float(rejected)


def test_the_scorer_child_scores_a_training_pair_like_the_trainer(reward_run):
    project, run_id = reward_run
    assert latest_reward_run(project) == run_id
    pair = PAIRS[3]
    expected = trainer_rewards(project, run_id, pair)
    with Scorer(project, run_id) as scorer:
        assert run_id in scorer.wait_ready(timeout=240)
        got = scorer.score(pair["prompt"], [pair["chosen"], pair["rejected"], pair["chosen"]], timeout=120)
        assert got[0] == pytest.approx(expected[0], abs=1e-4)
        assert got[1] == pytest.approx(expected[1], abs=1e-4)
        assert got[2] == pytest.approx(got[0], abs=1e-5)  # batched with others or not: the same score
        assert got[0] != pytest.approx(got[1], abs=1e-6)
        with pytest.raises(ScoringError, match="texts"):
            scorer.score(pair["prompt"], [pair["chosen"], 7], timeout=60)
        assert scorer.score(pair["prompt"], [pair["rejected"]], timeout=60)[0] == pytest.approx(got[1], abs=1e-4)


def test_the_child_protocol_and_its_refusal_of_a_run_that_is_no_reward_model(reward_run):
    project, run_id = reward_run
    proc = subprocess.run([sys.executable, "-m", "workbench.ranking.scoring", project, run_id], cwd=REPO, text=True,
                          capture_output=True, timeout=240,
                          input=json.dumps({"id": "a", "prompt": PAIRS[0]["prompt"], "texts": ["Yes.", "No."]}) +
                          "\nnot json\n")
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 0, proc.stderr
    assert lines[0]["ready"] is True
    assert lines[1]["id"] == "a" and len(lines[1]["scores"]) == 2
    assert lines[2]["id"] is None and "error" in lines[2]

    proc = subprocess.run([sys.executable, "-m", "workbench.ranking.scoring", project, "no-such-run"], cwd=REPO,
                          text=True, capture_output=True, timeout=120, input="")
    assert proc.returncode == 1
    assert "no run 'no-such-run'" in json.loads(proc.stdout.splitlines()[0])["error"]


def test_score_command_prints_one_score_per_answer(reward_run):
    project, run_id = reward_run
    result = cli("score", project, run_id, "--prompt", PAIRS[0]["prompt"], "--answer", PAIRS[0]["chosen"],
                 "--answer", PAIRS[0]["rejected"])
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [r[1] for r in rows] == [PAIRS[0]["chosen"], PAIRS[0]["rejected"]]
    expected = trainer_rewards(project, run_id, PAIRS[0])
    assert [float(r[0]) for r in rows] == pytest.approx(list(expected), abs=1e-4)


def test_every_user_of_a_reward_model_gives_the_same_score(reward_run, tmp_path):
    """One (prompt, answer), as a conversation and as text, through the ranking scorer, the reward
    function GRPO and RLOO hand to TRL, PPO's rewards, the dry run and the merged export loaded back."""
    from types import SimpleNamespace

    from workbench import params as params_mod
    from workbench.evaluate.reward_dry_run import dry_run
    from workbench.methods import ppo
    from workbench.methods.grpo import reward_setup
    from workbench.methods.grpo_params import GRPOParams
    from workbench.methods.ppo_params import PPOParams
    from workbench.rewards.model import CONVERSATIONAL, load_reward_model
    from workbench.run.spec import Runtime

    project, run_id = reward_run
    pair = PAIRS[5]
    text_prompt, answer = pair["prompt"], pair["chosen"]
    chat_prompt = [{"role": "user", "content": text_prompt}]
    spec = SimpleNamespace(project=project, runtime=Runtime(device="cpu", precision="fp32"))
    quiet = SimpleNamespace(status=lambda *args, **kwargs: None)

    with Scorer(project, run_id) as scorer:
        ranking = {"chat": scorer.score(chat_prompt, [answer], timeout=240)[0],
                   "text": scorer.score(text_prompt, [answer], timeout=120)[0]}

    grpo_p = params_mod.build(GRPOParams, {"rewards": "", "reward_model": f"run:{run_id}"})
    (grpo_reward,), weights = reward_setup(spec, quiet, grpo_p, [{"prompt": chat_prompt, "record_index": 1}])
    assert weights == [1.0] and grpo_reward.__name__ == "reward_model"  # TRL logs rewards/reward_model/mean

    def as_trl_calls(prompt):  # TRL hands a conversation's completions over as an assistant turn
        completion = [{"role": "assistant", "content": answer}] if isinstance(prompt, list) else answer
        return grpo_reward(prompts=[prompt], completions=[completion], completion_ids=[[1, 2]],
                           trainer_state=None, record_index=[1])[0]

    ppo_p = params_mod.build(PPOParams, {"reward_model": f"run:{run_id}"})

    def ppo_score(prompt):
        rewards = ppo.load_rewards(spec, ppo_p, None, {"prompt": prompt, "record_index": 1})
        return float(ppo.score(rewards, [{"prompt": prompt, "record_index": 1}], [answer], [[1, 2]])[0][0])

    import_file(project, write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": text_prompt}]))
    report = dry_run(project, "grpo", {"rewards": "", "reward_model": f"run:{run_id}"}, datasets=["prompts"],
                     prompts=1, n=1, completion=answer)
    assert report["rewards"] == [{"name": "reward_model", "weight": 1.0}]
    dry = report["prompts"][0]["rows"][0]["scores"]["reward_model"]  # the base has a chat template: a conversation

    result = cli("export", project, run_id, "--format", "merged")
    assert result.returncode == 0, result.stderr
    merged = locations.exports_dir(project, run_id) / "merged"
    assert json.loads((merged / "config.json").read_text())[CONVERSATIONAL] is False  # it learnt from text pairs
    exported = load_reward_model(project, str(merged))

    chat = {"ranking": ranking["chat"], "grpo/rloo": as_trl_calls(chat_prompt), "ppo": ppo_score(chat_prompt),
            "dry run": dry, "export": exported.score([chat_prompt], [answer])[0]}
    text = {"ranking": ranking["text"], "grpo/rloo": as_trl_calls(text_prompt), "ppo": ppo_score(text_prompt),
            "export": exported.score([text_prompt], [answer])[0]}
    trainer = trainer_rewards(project, run_id, pair)[0]
    print(f"chat: {chat}\ntext: {text}, trainer {trainer}")
    assert all(v == pytest.approx(chat["ranking"], abs=1e-4) for v in chat.values()), chat
    assert all(v == pytest.approx(trainer, abs=1e-4) for v in text.values()), text
    assert chat["ranking"] != pytest.approx(trainer, abs=1e-6)  # two encodings, so the comparison means something
