"""A reward run exports as its adapter (with the score head) or as a merged reward model that
scores exactly as the run; GGUF is refused with the reason."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import cli, write_jsonl
from workbench import locations, models
from workbench import project as projects
from workbench.data.importer import import_file
from workbench.ranking.scoring import RewardModel, load_seq_cls

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


def scores_of(model, rows: list[list[int]]) -> list[float]:
    import torch

    with torch.inference_mode():
        return [float(model(input_ids=torch.tensor([r])).logits[0, 0]) for r in rows]


def test_merged_and_adapter_exports_score_like_the_run(reward_run):
    project, run_id = reward_run
    run = RewardModel(project, run_id)
    rows = [run.input_ids(p["prompt"], p[k]) for p in PAIRS[:3] for k in ("chosen", "rejected")]
    expected = [run.score(p["prompt"], [p["chosen"], p["rejected"]]) for p in PAIRS[:3]]
    expected = [s for pair in expected for s in pair]

    result = cli("export", project, run_id, "--format", "merged")
    assert result.returncode == 0, result.stderr
    merged = locations.exports_dir(project, run_id) / "merged"

    tokenizer = models.load_tokenizer(merged)
    model = load_seq_cls(merged, "float32", "cpu", tokenizer.pad_token_id).eval()
    assert type(model).__name__.endswith("ForSequenceClassification") and model.config.num_labels == 1
    assert scores_of(model, rows) == pytest.approx(expected, abs=1e-4)

    result = cli("export", project, run_id, "--format", "lora")
    assert result.returncode == 0, result.stderr
    adapter = locations.exports_dir(project, run_id) / "lora"
    assert "score" in (adapter / "adapter_config.json").read_text()
    from peft import PeftModel

    from workbench.run.spec import JobSpec

    spec = JobSpec.load(locations.run_dir(project, run_id))
    base = load_seq_cls(models.resolve(spec.model_path), "float32", "cpu", tokenizer.pad_token_id)
    with_adapter = PeftModel.from_pretrained(base, adapter).eval()
    assert scores_of(with_adapter, rows) == pytest.approx(expected, abs=1e-4)


def test_gguf_export_of_a_reward_model_is_refused_with_the_reason(reward_run):
    project, run_id = reward_run
    for fmt in ("gguf", "gguf-lora"):
        result = cli("export", project, run_id, "--format", fmt)
        assert result.returncode == 1
        assert "reward model" in result.stderr and "llama.cpp" in result.stderr
