"""Training modes: the adapter config of each mode, QLoRA's refusals, the presets."""

from __future__ import annotations

import pytest

from workbench import registry
from workbench.methods.kit.train_args import check_mode, load_model, peft_config
from workbench.methods.pair_params import DPOParams, RewardParams
from workbench.methods.sft_params import SFTParams
from workbench.params import ParamError, build, coerce, describe
from workbench.registry.presets import OWN, presets_for
from workbench.run.spec import Runtime

CPU = Runtime(device="cpu", precision="fp32")


@pytest.mark.parametrize("params", [SFTParams, RewardParams, DPOParams])
def test_lora_and_qlora_get_an_adapter_full_and_last_layer_none(params):
    for mode in ("lora", "qlora"):
        config = peft_config(build(params, {"mode": mode, "lora_r": "8", "lora_alpha": "16",
                                            "target_modules": "q_proj, v_proj"}))
        assert (config.r, config.lora_alpha, config.task_type) == (8, 16, "CAUSAL_LM")
        assert set(config.target_modules) == {"q_proj", "v_proj"}
        assert (config.use_dora, config.use_rslora) == (False, False)
    for mode in ("full", "last_layer"):
        assert peft_config(build(params, {"mode": mode})) is None


def test_dora_and_rslora_flags_reach_the_lora_config():
    config = peft_config(build(SFTParams, {"use_dora": "true", "use_rslora": "true"}))
    assert (config.use_dora, config.use_rslora, config.target_modules) == (True, True, "all-linear")
    config = peft_config(build(RewardParams, {"mode": "qlora", "use_dora": "true"}), "SEQ_CLS", ["score"])
    assert (config.use_dora, config.use_rslora, config.task_type) == (True, False, "SEQ_CLS")
    assert set(config.modules_to_save) == {"score"}


def test_qlora_is_refused_on_the_cpu_before_anything_loads(tmp_path):
    p = build(SFTParams, {"mode": "qlora"})
    with pytest.raises(ParamError) as info:
        check_mode(p, CPU)
    message = str(info.value)
    assert "mode=qlora needs a CUDA GPU" in message and "Use mode=lora on this machine" in message
    with pytest.raises(ParamError, match="needs a CUDA GPU"):  # refused before the (missing) folder is read
        load_model(p, tmp_path / "no-model-here", CPU)
    for mode in ("lora", "full", "last_layer"):
        check_mode(build(SFTParams, {"mode": mode}), CPU)


def test_qlora_without_bitsandbytes_names_the_package(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "bitsandbytes" else real(name, *a))
    with pytest.raises(ParamError, match=r"needs the bitsandbytes package.*pip install bitsandbytes"):
        check_mode(build(DPOParams, {"mode": "qlora"}), Runtime(device="cuda", precision="bf16"))


def test_every_preset_value_is_a_valid_value_of_its_method():
    for name, method in registry.METHODS.items():
        infos = {i.name: i for i in describe(method.params)}
        for preset, values in presets_for(name).items():
            assert values and set(values) <= set(infos), (name, preset)
            for field, value in values.items():
                assert coerce(infos[field], value) == value  # raises ParamError on a bad value
    for name, own in OWN.items():  # a method's own presets are kept whole
        for preset, values in own.items():
            assert presets_for(name)[preset].items() >= values.items(), (name, preset)


def test_presets_differ_where_they_should():
    sft = presets_for("sft")
    assert {"quick test", "balanced", "quality"} <= set(sft)
    assert sft["quick test"]["max_steps"] > 0 and sft["quality"]["lora_r"] > sft["balanced"]["lora_r"]
    assert presets_for("classifier")["quick test"]["mode"] == "last_layer"
    assert "use_rslora" not in presets_for("classifier").get("low memory", {})


def test_the_classifier_is_registered_for_labelled_data():
    method = registry.get("classifier")
    assert (method.kind, method.data_kinds) == ("train", ("labelled", "unpaired_label"))
    assert method.runner == "workbench.methods.classifier:run"


def test_class_names_are_stable_and_need_two_classes():
    from workbench.data.errors import DataError
    from workbench.methods.classifier import class_names, label_name, record_text

    assert class_names([{"text": "a", "label": 10}, {"text": "b", "label": 2}, {"text": "c", "label": "x"}]) == \
        ["2", "10", "x"]
    assert [label_name({"prompt": "p", "completion": "c", "label": v}) for v in (True, False)] == ["good", "bad"]
    assert record_text({"prompt": "Q?", "completion": "A."}, tokenizer=None) == "Q?\nA."
    with pytest.raises(DataError, match="at least two classes; the data has 1: spam"):
        class_names([{"text": "a", "label": "spam"}, {"text": "b", "label": "spam"}])


def test_full_and_head_training_keep_fp32_master_weights_under_sixteen_bit_precision(tiny_model):
    """On a bf16 GPU the weights that train are fp32 (autocast computes in bf16), the frozen ones bf16: an
    update below 1/256 of a bf16 weight would be rounded away. A full run's TRL reference is asked in bf16."""
    import torch

    from workbench.methods.kit.train_args import reference_kwargs

    bf16 = Runtime(device="cpu", precision="bf16")  # the GPU's precision, on this machine's device
    dtypes = {}
    for mode in ("full", "last_layer", "lora"):
        model = load_model(build(SFTParams, {"mode": mode}), tiny_model, bf16)
        dtypes[mode] = {(p.requires_grad, p.dtype) for p in model.parameters()}
    assert dtypes["full"] == {(True, torch.float32)}
    assert dtypes["last_layer"] == {(True, torch.float32), (False, torch.bfloat16)}
    assert dtypes["lora"] == {(True, torch.bfloat16)}  # the plain model: PEFT adds fp32 adapters later
    head = load_model(build(SFTParams, {"mode": "last_layer"}), tiny_model, bf16).lm_head.weight
    stored = load_model(build(SFTParams, {"mode": "full"}), tiny_model, CPU).lm_head.weight
    assert torch.equal(head, stored)  # the head as stored (fp32 here), not a bf16 round trip
    assert reference_kwargs(build(DPOParams, {"mode": "full"}), bf16) == {"model_init_kwargs": {"dtype": "bfloat16"}}
    assert reference_kwargs(build(DPOParams, {"mode": "lora"}), bf16) == {}
    assert reference_kwargs(build(DPOParams, {"mode": "full"}), CPU) == {}
