"""Method parameters: text from a form or `--set` becomes typed, checked values."""

from __future__ import annotations

import re

import pytest

from workbench.methods.sft_params import SFTParams
from workbench.params import (
    Fields,
    ParamError,
    build,
    coerce,
    describe,
    param,
    paramclass,
    parse_assignments,
)
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
    ("learning_rate", "nan", "learning_rate: nan is not a finite number"),
    ("learning_rate", "-inf", "learning_rate: -inf is not a finite number"),
    ("learning_rate", float("nan"), "learning_rate: nan is not a finite number"),
    ("epochs", "inf", "epochs: inf is not a finite number"),
    ("max_steps", "nan", "max_steps: 'nan' is not a valid int"),
    ("max_steps", "inf", "max_steps: 'inf' is not a valid int"),
    ("max_steps", "1e99", "max_steps: 1e+99 is above the maximum 1e+09"),
    ("max_steps", 10**9 + 1, "max_steps: 1000000001 is above the maximum 1e+09"),
])
def test_bad_values_name_the_field_and_the_problem(name, raw, message):
    with pytest.raises(ParamError, match=re.escape(message)):
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


# The method form lists the fields in this order; job.toml and `describe` follow it.
FORM_ORDER = {
    "sft": ["mode", "learning_rate", "epochs", "max_steps", "batch_size", "grad_accum", "max_length", "warmup",
            "scheduler", "weight_decay", "lora_r", "lora_alpha", "lora_dropout", "target_modules", "use_dora",
            "use_rslora", "quant_type", "double_quant", "compute_dtype", "eval_fraction", "eval_steps",
            "save_steps", "logging_steps", "gradient_checkpointing", "report_to", "sample_count", "sample_max_tokens",
            "packing", "attention", "liger", "compile"],
    "classifier": ["mode", "learning_rate", "epochs", "max_steps", "batch_size", "grad_accum", "max_length",
                   "warmup", "scheduler", "weight_decay", "lora_r", "lora_alpha", "lora_dropout", "target_modules",
                   "use_dora", "use_rslora", "eval_fraction", "eval_steps", "save_steps", "logging_steps",
                   "gradient_checkpointing", "report_to"],
    "rloo": ["mode", "learning_rate", "epochs", "max_steps", "batch_size", "grad_accum", "num_generations",
             "max_completion_length", "temperature", "warmup", "scheduler", "weight_decay", "lora_r", "lora_alpha",
             "lora_dropout", "target_modules", "use_dora", "use_rslora", "quant_type", "double_quant",
             "compute_dtype", "save_steps", "logging_steps", "gradient_checkpointing", "report_to", "sample_every",
             "sample_count",
             "beta", "reward_model",
             "reward_model_weight", "rewards", "reward_file", "format_pattern", "answer_column", "numeric_tolerance",
             "regex", "json_fields", "xml_elements", "length_min", "length_max", "length_unit", "tests_column",
             "code_timeout", "code_memory_mb"],
    "ppo": ["mode", "learning_rate", "max_steps", "batch_size", "mini_batch_size", "ppo_epochs", "max_prompt_length",
            "max_new_tokens", "temperature", "max_grad_norm", "reward_model", "rewards", "reward_file", "score_clip",
            "whiten_rewards", "kl_coef", "kl_control", "target_kl", "kl_horizon", "kl_estimator", "gamma", "lam",
            "cliprange", "cliprange_value", "vf_coef", "entropy_coef", "lora_r", "lora_alpha", "lora_dropout",
            "target_modules", "save_steps", "logging_steps", "report_to", "sample_every", "sample_count", "format_pattern",
            "answer_column", "numeric_tolerance",
            "regex", "json_fields", "xml_elements", "length_min", "length_max", "length_unit", "tests_column",
            "code_timeout", "code_memory_mb"],
}


@pytest.mark.parametrize("method", sorted(FORM_ORDER))
def test_shared_field_groups_keep_each_method_s_form_order(method):
    assert [i.name for i in describe(get_method(method).params)] == FORM_ORDER[method]


def test_shared_fields_keep_the_form_group_of_their_method():
    groups = {m: {i.name: i.group for i in describe(get_method(m).params)} for m in ("grpo", "ppo")}
    assert groups["grpo"]["answer_column"] == "rewards" and groups["ppo"]["answer_column"] == "reward options"
    assert groups["ppo"]["lora_r"] == "lora" and groups["ppo"]["save_steps"] == "schedule"


def test_a_paramclass_places_each_group_where_its_body_names_it():
    shared = Fields(a=param(1, "A.", min=0), b=param("x", "B.", choices=("x", "y"), group="g"))

    @paramclass
    class One:
        first: float = param(0.5, "First.")
        _shared: Fields = shared
        last: bool = param(False, "Last.")

    @paramclass
    class Two:
        _shared: Fields = shared.without("a")

    assert [(i.name, i.kind, i.default, i.group) for i in describe(One)] == \
        [("first", float, 0.5, "training"), ("a", int, 1, "training"), ("b", str, "x", "g"),
         ("last", bool, False, "training")]
    assert [i.name for i in describe(Two)] == ["b"]
    assert build(One, {"a": "3"}).a == 3 and build(Two).b == "x"
    with pytest.raises(ParamError, match="a: -1 is below the minimum 0"):
        build(One, {"a": "-1"})
    with pytest.raises(ParamError, match="Unknown parameter"):
        build(Two, {"a": "3"})  # a group less a field has no such field
    with pytest.raises(TypeError, match="Not in this group: c"):
        shared.without("c")


def test_a_field_declared_twice_is_refused():
    with pytest.raises(TypeError, match="Clash: the field a is declared twice"):
        @paramclass
        class Clash:
            a: int = param(1, "A.")
            _more: Fields = Fields(a=param(2, "Another A."))


def test_every_number_parameter_refuses_non_finite_values_and_every_int_an_absurd_one():
    from workbench import registry
    from workbench.params import INT_LIMIT, describe
    from workbench.ranking.judge_params import JudgeParams
    from workbench.ranking.sample_params import SampleParams
    from workbench.synth.params import SynthParams

    classes = {m.params for m in registry.METHODS.values()} | {SampleParams, JudgeParams, SynthParams}
    infos = [i for c in classes for i in describe(c) if i.kind in (int, float)]
    assert len(infos) > 50
    for info in infos:
        for raw in ("1e99", "nan", "inf", "-inf") if info.kind is int else ("nan", "inf", "-inf"):
            with pytest.raises(ParamError, match=f"^{info.name}: "):
                coerce(info, raw)
    assert coerce(INFO["max_steps"], str(INT_LIMIT)) == INT_LIMIT
