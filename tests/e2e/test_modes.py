"""Training modes end to end: the output head alone, DoRA, the classifier, and the estimate's counts."""

from __future__ import annotations

import json
import math

import pytest

from tests.e2e.conftest import cli, events, of_type, write_jsonl
from workbench import locations
from workbench import project as projects
from workbench.data.importer import import_file
from workbench.methods.classifier_params import ClassifierParams
from workbench.methods.sft_params import SFTParams
from workbench.params import build
from workbench.run import events as ev
from workbench.run.spec import Runtime

pytestmark = pytest.mark.e2e

CPU = Runtime(device="cpu", precision="fp32")
SHORT = ["--wait", "--set", "eval_steps=0", "--set", "save_steps=100", "--set", "warmup=0"]
POSITIVE = ["wonderful", "great", "lovely", "superb", "excellent"]
NEGATIVE = ["terrible", "awful", "dreadful", "horrid", "poor"]


def reviews(numbers) -> list[dict]:
    """Texts whose last word gives their class away: learnable by a head on a random base."""
    return [{"text": f"Review {i}: the book was {(POSITIVE if i % 2 else NEGATIVE)[i // 2 % 5]}",
             "label": "positive" if i % 2 else "negative"} for i in numbers]


def train(project: str, *args: str) -> tuple[str, list[ev.Event]]:
    result = cli("train", project, *SHORT, *args)
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.splitlines()[0].strip()
    got = events(project, run_id)
    assert of_type(got, ev.Finished)[-1].reason == "completed"
    return run_id, got


def counts(model) -> tuple[int, int]:
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def test_sft_last_layer_trains_the_output_head_alone(tiny_project, tiny_model):
    import torch
    from transformers import AutoModelForCausalLM

    from workbench import models

    run_id, got = train(tiny_project, "--set", "mode=last_layer", "--set", "max_steps=5",
                        "--set", "learning_rate=1e-2")
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    hidden, vocab = base.config.hidden_size, base.config.vocab_size
    begin = of_type(got, ev.TrainBegin)[0]
    assert begin.trainable_params == vocab * hidden  # the untied head, nothing else
    assert all(math.isfinite(log.loss) for log in of_type(got, ev.Log))

    out = locations.run_dir(tiny_project, run_id) / "model"
    trained = AutoModelForCausalLM.from_pretrained(out)
    assert trained.lm_head.weight is not trained.get_input_embeddings().weight
    before, after = base.state_dict(), trained.state_dict()
    for name, tensor in before.items():
        if name != "lm_head.weight":
            assert torch.equal(tensor, after[name]), f"{name} changed"
    assert not torch.equal(after["lm_head.weight"], before["model.embed_tokens.weight"])  # the head learnt

    tokenizer = models.load_tokenizer(out)
    prompt = tokenizer("Add one to 3.", return_tensors="pt")
    generated = trained.generate(**prompt, min_new_tokens=4, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] == prompt["input_ids"].shape[1] + 4

    exported = cli("export", tiny_project, run_id, "--format", "merged")  # the untied head survives an export
    assert exported.returncode == 0, exported.stderr
    merged = AutoModelForCausalLM.from_pretrained(locations.exports_dir(tiny_project, run_id) / "merged")
    assert torch.equal(merged.lm_head.weight, trained.lm_head.weight)
    assert torch.equal(merged.get_input_embeddings().weight, before["model.embed_tokens.weight"])
    assert torch.equal(merged.generate(**prompt, min_new_tokens=4, max_new_tokens=4, do_sample=False), generated)


def test_dora_trains_a_few_steps(tiny_project):
    run_id, got = train(tiny_project, "--set", "use_dora=true", "--set", "use_rslora=true", "--set", "max_steps=3",
                        "--set", "lora_r=4")
    assert [log.step for log in of_type(got, ev.Log)] == [1, 2, 3]
    assert all(math.isfinite(log.loss) for log in of_type(got, ev.Log))
    config = json.loads((locations.run_dir(tiny_project, run_id) / "adapter" / "adapter_config.json").read_text())
    assert (config["use_dora"], config["use_rslora"], config["r"]) == (True, True, 4)


def test_classifier_learns_the_classes_of_labelled_texts(home, tiny_model, tmp_path):
    projects.create("reviews", base_model=str(tiny_model))
    import_file("reviews", write_jsonl(tmp_path / "reviews.jsonl", reviews(range(60))))
    import_file("reviews", write_jsonl(tmp_path / "held.jsonl", reviews(range(100, 110))), split="eval")
    run_id, got = train("reviews", "--method", "classifier", "--set", "max_steps=30", "--set", "eval_steps=10",
                        "--set", "learning_rate=1e-2")
    begin = of_type(got, ev.TrainBegin)[0]
    assert (begin.train_records, begin.eval_records, begin.trainable_params) == (60, 10, 2 * 32)
    evals = of_type(got, ev.Eval)
    assert [e.step for e in evals] == [10, 20, 30]
    assert all(0.0 <= e.metrics["accuracy"] <= 1.0 for e in evals)
    assert evals[-1].metrics["accuracy"] >= 0.9  # the last word gives the class away

    out = locations.run_dir("reviews", run_id) / "model"
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"} and config["label2id"]["positive"] == 1
    assert json.loads((out / "labels.json").read_text())["labels"] == ["negative", "positive"]


def test_classifier_on_unpaired_labels_learns_good_and_bad_with_lora(home, tiny_model, tmp_path):
    rows = [{"prompt": f"Rate book {i}.", "completion": "Fine." if i % 2 else "Bad.", "label": bool(i % 2)}
            for i in range(20)]
    projects.create("judged", base_model=str(tiny_model))
    import_file("judged", write_jsonl(tmp_path / "judged.jsonl", rows))
    run_id, got = train("judged", "--method", "classifier", "--set", "mode=lora", "--set", "max_steps=3")
    assert "accuracy" in of_type(got, ev.Eval)[-1].metrics
    out = locations.run_dir("judged", run_id) / "adapter"
    assert json.loads((out / "labels.json").read_text())["labels"] == ["bad", "good"]
    assert "score" in (out / "adapter_config.json").read_text()


def test_estimated_counts_are_the_real_model_s_for_every_mode(tiny_project, tiny_model):
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from workbench.methods.kit.train_args import load_model, peft_config
    from workbench.registry.estimate import PARTS, estimate

    values = {"lora_r": "4", "use_dora": "true", "target_modules": "q_proj,v_proj,down_proj"}
    report = estimate(tiny_project, "sft", values, device="cpu")
    found = {m["mode"]: (m["trainable"], m["total"]) for m in report["modes"]}
    assert list(found) == ["full", "lora", "qlora", "last_layer"] and report["chosen"] == "lora"

    full = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert found["full"] == counts(full) and found["full"][0] == found["full"][1]
    p = build(SFTParams, values)
    real_lora = counts(get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model), peft_config(p)))
    assert found["lora"] == real_lora and found["qlora"] == real_lora  # the same adapters on the same shapes
    head = build(SFTParams, {**values, "mode": "last_layer"})
    assert found["last_layer"] == counts(load_model(head, tiny_model, CPU))
    for m in report["modes"]:
        assert m["memory"] == sum(m[part] for part in PARTS) > 0
    memory = {m["mode"]: m for m in report["modes"]}
    assert memory["full"]["optimizer"] > memory["lora"]["optimizer"]
    assert memory["qlora"]["weights"] < memory["lora"]["weights"]


def test_estimated_classifier_counts_are_the_real_model_s(home, tiny_model, tmp_path):
    from peft import get_peft_model

    from workbench.methods.kit.train_args import load_model, peft_config
    from workbench.registry.estimate import estimate

    projects.create("reviews", base_model=str(tiny_model))
    import_file("reviews", write_jsonl(tmp_path / "reviews.jsonl", reviews(range(20))))
    found = {m["mode"]: (m["trainable"], m["total"]) for m in estimate("reviews", "classifier", device="cpu")["modes"]}
    assert list(found) == ["full", "lora", "last_layer"]
    for mode in found:
        p = build(ClassifierParams, {"mode": mode})
        model = load_model(p, tiny_model, CPU, task="seq_cls", num_labels=2)
        if peft_config(p, "SEQ_CLS") is not None:
            model = get_peft_model(model, peft_config(p, "SEQ_CLS"))
        assert found[mode] == counts(model), mode
    assert found["last_layer"][0] == 2 * 32


def test_estimate_command_prints_json_and_a_table(tiny_project):
    result = cli("estimate", tiny_project, "--set", "mode=full", "--set", "batch_size=2", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report["chosen"], report["batch_size"], report["device"]) == ("full", 2, "cpu")
    assert report["step"].startswith("2 x ") and "(the longest record; max_length 512)" in report["step"]
    packed = json.loads(cli("estimate", tiny_project, "--set", "packing=on", "--set", "batch_size=2",
                            "--json").stdout.strip().splitlines()[-1])
    assert packed["step"] == "2 x 512 tokens (packed rows)"  # rows filled up to max_length
    lora = next(m for m in report["modes"] if m["mode"] == "lora")
    assert next(m for m in packed["modes"] if m["mode"] == "lora")["activations"] > lora["activations"]
    table = cli("estimate", tiny_project, "--method", "dpo")
    assert table.returncode == 0 and "last_layer" in table.stdout and "lora*" in table.stdout
    bad = cli("estimate", tiny_project, "--set", "mode=adapter")
    assert bad.returncode == 1 and "'adapter' is not one of lora, qlora, full, last_layer" in bad.stderr


def test_qlora_on_the_cpu_is_refused_before_the_model_is_touched(tiny_project):
    """`train` itself refuses, before a run folder exists (the worker keeps the same check)."""
    result = cli("train", tiny_project, "--wait", "--set", "mode=qlora", "--set", "max_steps=2")
    assert result.returncode == 1
    assert "mode=qlora needs a CUDA GPU" in result.stderr and "Use mode=lora on this machine" in result.stderr
    assert store_runs(tiny_project) == []


def store_runs(project: str) -> list[str]:
    from workbench.jobs import store

    return [r.id for r in store.list_runs(project)]
