"""Method parameters: text from a form or `--set` becomes typed, checked values."""

from __future__ import annotations

import pytest

from workbench.methods.sft_params import SFTParams
from workbench.params import ParamError, build, coerce, describe, parse_assignments
from workbench.registry import get as get_method

INFO = {i.name: i for i in describe(SFTParams)}


def test_every_parameter_has_help_and_a_typed_default():
    for info in describe(SFTParams):
        assert info.help, info.name
        assert isinstance(info.default, info.kind)
    assert INFO["learning_rate"].kind is float and INFO["max_steps"].kind is int
    assert INFO["gradient_checkpointing"].kind is bool
    assert INFO["mode"].choices == ("lora", "qlora", "full", "last_layer")
    assert (INFO["use_dora"].default, INFO["use_rslora"].default) == (False, False)
    assert (INFO["quant_type"].default, INFO["quant_type"].choices) == ("nf4", ("nf4", "fp4"))
    assert INFO["double_quant"].default is True
    assert (INFO["compute_dtype"].default, INFO["compute_dtype"].choices) == \
        ("bfloat16", ("bfloat16", "float16", "float32"))


def test_every_training_method_offers_the_modes_and_adapter_options():
    from workbench.methods.pair_params import DPOParams, RewardParams

    for params in (SFTParams, RewardParams, DPOParams):
        info = {i.name: i for i in describe(params)}
        assert info["mode"].choices == ("lora", "qlora", "full", "last_layer"), params.__name__
        assert {"use_dora", "use_rslora", "quant_type", "double_quant", "compute_dtype"} <= set(info)
    classifier = {i.name: i for i in describe(get_method("classifier").params)}
    assert (classifier["mode"].default, classifier["mode"].choices) == ("last_layer", ("last_layer", "lora", "full"))


@pytest.mark.parametrize("name, raw, value", [
    ("learning_rate", "3e-4", 3e-4),
    ("learning_rate", " 0.001 ", 0.001),
    ("learning_rate", 1, 1.0),  # an int where a float is expected is fine
    ("max_steps", "200", 200),
    ("max_steps", "1e3", 1000),
    ("gradient_checkpointing", "yes", True),
    ("gradient_checkpointing", "OFF", False),
    ("gradient_checkpointing", True, True),
    ("mode", "full", "full"),
    ("mode", "last_layer", "last_layer"),
    ("use_dora", "on", True),
    ("quant_type", "fp4", "fp4"),
])
def test_coerce_turns_text_into_the_field_type(name, raw, value):
    got = coerce(INFO[name], raw)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("name, raw, message", [
    ("max_steps", "ten", "max_steps: 'ten' is not a valid int"),
    ("max_steps", "2.5", "max_steps: '2.5' is not a valid int"),
    ("learning_rate", "fast", "learning_rate: 'fast' is not a valid float"),
    ("gradient_checkpointing", "maybe", "not a valid bool"),
    ("max_steps", "-1", "below the minimum 0"),
    ("batch_size", "0", "below the minimum 1"),
    ("lora_dropout", "0.95", "above the maximum 0.9"),
    ("mode", "adapter", "'adapter' is not one of lora, qlora, full, last_layer"),
    ("quant_type", "int4", "'int4' is not one of nf4, fp4"),
    ("compute_dtype", "fp8", "'fp8' is not one of bfloat16, float16, float32"),
    ("max_steps", 2.5, "expected a int"),
])
def test_bad_values_name_the_field_and_the_problem(name, raw, message):
    with pytest.raises(ParamError, match=message.replace("(", r"\(").replace(")", r"\)")):
        coerce(INFO[name], raw)


def test_build_overrides_defaults_and_refuses_unknown_keys():
    p = build(SFTParams, {"max_steps": "5", "mode": "full"})
    assert (p.max_steps, p.mode, p.learning_rate) == (5, "full", SFTParams().learning_rate)
    with pytest.raises(ParamError) as info:
        build(SFTParams, {"lr": "1e-4", "epoch": "2", "max_steps": "3"})
    assert "Unknown parameter(s): epoch, lr." in str(info.value)
    assert "learning_rate" in str(info.value)  # the known names are listed


def test_parse_assignments():
    assert parse_assignments(["lr=1e-4", " epochs =2", "target_modules=q_proj,v_proj", "x=a=b"]) == \
        {"lr": "1e-4", "epochs": "2", "target_modules": "q_proj,v_proj", "x": "a=b"}
    assert parse_assignments([]) == {}
    for bad in ("lr", "=3"):
        with pytest.raises(ParamError, match="is not key=value"):
            parse_assignments([bad])


def test_registry_names_the_params_and_data_kinds():
    sft = get_method("sft")
    assert sft.params is SFTParams and "chat" in sft.data_kinds
    with pytest.raises(ValueError, match="Unknown method 'ppo2'. Available: sft"):
        get_method("ppo2")
