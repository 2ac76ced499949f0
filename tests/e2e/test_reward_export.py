"""A reward run exports as its adapter (with the score head) or as a merged reward model that
scores exactly as the run; GGUF is refused with the reason."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import cli, write_jsonl
from workbench import locations, models
from workbench import project as projects
from workbench.data.importer import import_file
from workbench.rewards.model import load_reward_model

pytestmark = pytest.mark.e2e

PAIRS = [{"prompt": f"Name {i} in words.", "chosen": f"It is number {i}.", "rejected": "No."} for i in range(12)]


@pytest.fixture(scope="module")
def reward_run(tiny_model, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(tmp_path_factory.mktemp("export-home")))
        projects.create("rx", base_model=str(tiny_model))
        import_file("rx", write_jsonl(tmp_path_factory.mktemp("pairs") / "pairs.jsonl", PAIRS))
        result = cli("train", "rx", "--method", "reward", "--wait", "--set", "max_steps=2", "--set", "batch_size=4",
                     "--set", "eval_steps=0", "--set", "max_length=64", "--set", "save_steps=100",
                     "--set", "learning_rate=1e-3")
        assert result.returncode == 0, result.stderr
        yield "rx", result.stdout.splitlines()[0].strip()


def seq_cls(folder, pad_token_id: int):
    """The folder as a one-output sequence classifier, loaded by transformers alone."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1)
    model.config.pad_token_id = pad_token_id
    return model.eval()


def scores_of(model, rows: list[list[int]]) -> list[float]:
    import torch

    with torch.inference_mode():
        return [float(model(input_ids=torch.tensor([r])).logits[0, 0]) for r in rows]


def test_merged_and_adapter_exports_score_like_the_run(reward_run):
    project, run_id = reward_run
    run = load_reward_model(project, run_id)
    rows = [run.encode(p["prompt"], p[k]) for p in PAIRS[:3] for k in ("chosen", "rejected")]
    expected = run.score([p["prompt"] for p in PAIRS[:3] for _ in range(2)],
                         [p[k] for p in PAIRS[:3] for k in ("chosen", "rejected")])

    result = cli("export", project, run_id, "--format", "merged")
    assert result.returncode == 0, result.stderr
    merged = locations.exports_dir(project, run_id) / "merged"

    tokenizer = models.load_tokenizer(merged)
    model = seq_cls(merged, tokenizer.pad_token_id)
    assert type(model).__name__.endswith("ForSequenceClassification") and model.config.num_labels == 1
    assert scores_of(model, rows) == pytest.approx(expected, abs=1e-4)

    result = cli("export", project, run_id, "--format", "lora")
    assert result.returncode == 0, result.stderr
    adapter = locations.exports_dir(project, run_id) / "lora"
    assert "score" in (adapter / "adapter_config.json").read_text()
    from peft import PeftModel

    from workbench.run.spec import JobSpec

    spec = JobSpec.load(locations.run_dir(project, run_id))
    base = seq_cls(models.resolve(spec.model_path), tokenizer.pad_token_id)
    with_adapter = PeftModel.from_pretrained(base, adapter).eval()
    assert scores_of(with_adapter, rows) == pytest.approx(expected, abs=1e-4)


def test_gguf_export_of_a_reward_model_is_refused_with_the_reason(reward_run):
    project, run_id = reward_run
    for fmt in ("gguf", "gguf-lora"):
        result = cli("export", project, run_id, "--format", fmt)
        assert result.returncode == 1
        assert "reward model" in result.stderr and "llama.cpp" in result.stderr
