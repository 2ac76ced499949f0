"""`runtime.sharding`: how the ranks of a multi-process run hold the model (DDP or FSDP), chosen, refused and
recorded before any model is loaded."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from workbench.data.memory import GIB
from workbench.jobs.ranks import RanksError
from workbench.jobs.targets import runtime_from
from workbench.methods.kit import sharding
from workbench.methods.kit.sharding import ShardingError, check, decide
from workbench.run.spec import Runtime


def test_auto_shards_a_full_fine_tuning_that_does_not_fit_one_gpu_and_no_other():
    big, small, gpu = 100 * GIB, 10 * GIB, 80 * GIB
    choice, note = decide("auto", "sft", "full", 4, "cuda", big, gpu)
    assert choice == "fsdp"
    assert note == ("FSDP (full fine-tuning that does not fit one GPU: about 100.0 GiB a step by the estimate, one "
                    "GPU has 80.0 GiB): weights, gradients and optimizer state sharded over the 4 processes (FSDP2).")
    choice, note = decide("auto", "sft", "full", 4, "cuda", small, gpu)
    assert choice == "ddp" and note.startswith("DDP (full fine-tuning that fits one GPU: about 10.0 GiB a step")
    assert decide("auto", "sft", "full", 2, "cuda", int(0.95 * gpu), gpu)[0] == "fsdp"  # no room to spare
    assert decide("auto", "sft", "lora", 4, "cuda", big, gpu) == \
        ("ddp", "DDP (mode=lora): each process holds the whole model.")
    assert decide("auto", "dpo", "full", 4, "cuda", big, gpu)[0] == "fsdp"  # every method on the Trainer
    assert decide("auto", "ppo", "full", 4, "cuda", big, gpu) == \
        ("ddp", "DDP (ppo is not sharded): each process holds the whole model.")
    assert decide("auto", "sft", "full", 2, "cpu", None, None)[0] == "ddp"  # the CPU: only when asked
    assert decide("ddp", "sft", "full", 4, "cuda", big, gpu) == \
        ("ddp", "DDP, as asked: each process holds the whole model.")
    assert decide("fsdp", "sft", "full", 2, "cpu", None, None)[0] == "fsdp"


def test_fsdp_is_refused_in_one_line_where_it_cannot_run():
    full, lora = SimpleNamespace(mode="full"), SimpleNamespace(mode="lora")
    check("sft", full, Runtime(sharding="fsdp", processes=2))  # accepted
    check("dpo", lora, Runtime(sharding="ddp"))
    check("dpo", lora, Runtime(sharding="auto"))
    with pytest.raises(ShardingError, match=r"^sharding=fsdp shards full fine-tuning; mode=qlora trains few enough"):
        check("sft", SimpleNamespace(mode="qlora"), Runtime(sharding="fsdp"))
    check("dpo", full, Runtime(sharding="fsdp", processes=2))
    with pytest.raises(ShardingError, match=r"^sharding=fsdp is available for sft, classifier, .*, not ppo: use "
                                            r"sharding=ddp"):
        check("ppo", full, Runtime(sharding="fsdp"))
    with pytest.raises(ShardingError, match=r"^sharding=fsdp splits the model over several processes"):
        check("sft", full, Runtime(sharding="fsdp", processes=1))
    with pytest.raises(RanksError, match=r"^sharding='zero3' is unknown: it can be auto, ddp, fsdp\.$"):
        check("sft", full, Runtime(sharding="zero3"))


def test_sharding_is_a_runtime_setting_recorded_in_the_spec():
    assert Runtime().sharding == "auto"
    assert runtime_from(None, ["sharding=fsdp,processes=2"]).sharding == "fsdp"


def test_fsdp2_settings_reach_the_trainer_only_on_several_processes(monkeypatch):
    p = SimpleNamespace(gradient_checkpointing=True)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert sharding.trainer_settings(p, Runtime(sharding="fsdp")) == {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert sharding.trainer_settings(p, Runtime(sharding="ddp")) == {}
    got = sharding.trainer_settings(p, Runtime(sharding="fsdp"))
    # FSDP's own activation checkpointing replaces the trainer's; checkpoints sharded, one file set a rank
    assert got == {"fsdp": True, "gradient_checkpointing": False, "fsdp_config": {
        "version": 2, "reshard_after_forward": True, "state_dict_type": "SHARDED_STATE_DICT",
        "activation_checkpointing": True}}


def test_a_one_process_run_keeps_its_setting_and_refuses_fsdp(monkeypatch, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "1")
    spec = SimpleNamespace(runtime=Runtime(sharding="auto"), notes=[], method="sft")
    sharding.resolve(spec, None, SimpleNamespace(mode="full"), tmp_path)
    assert spec.runtime.sharding == "auto" and spec.notes == []
    spec.runtime.sharding = "fsdp"
    with pytest.raises(ShardingError, match="this run has one"):
        sharding.resolve(spec, None, SimpleNamespace(mode="full"), tmp_path)


def rank_job(spec, run_dir, rank: int):
    """The job of rank `rank`: its writer (of events and job.toml) on for rank 0 alone, as the worker makes it."""
    from workbench.run import events as ev
    from workbench.run.context import JobContext

    return JobContext(spec=spec, run_dir=run_dir, writer=ev.EventWriter(run_dir / "events.jsonl", enabled=rank == 0))


def test_a_rank_resolves_auto_from_the_model_s_estimate_and_records_it_in_job_toml(monkeypatch, tmp_path, tiny_model):
    from workbench.run.spec import JobSpec

    monkeypatch.setenv("WORLD_SIZE", "2")
    p = SimpleNamespace(mode="full", batch_size=2, max_length=64)

    def resolved(device: str, gpu_bytes: int) -> JobSpec:
        monkeypatch.setattr(sharding, "smallest_gpu", lambda: gpu_bytes)
        spec = JobSpec(id="r", project="p", method="sft", base_model="tiny", params={}, train=[],
                       runtime=Runtime(device=device, precision="fp32", processes=2))
        sharding.resolve(spec, rank_job(spec, tmp_path, 0), p, tiny_model)
        assert JobSpec.load(tmp_path).runtime.sharding == spec.runtime.sharding  # written by rank 0 at once
        return spec

    roomy = resolved("cuda", 80 * GIB)
    assert roomy.runtime.sharding == "ddp" and roomy.notes[0].startswith("DDP (full fine-tuning that fits one GPU")
    cramped = resolved("cuda", GIB // 1024)  # a GPU smaller than the tiny model's step
    assert cramped.runtime.sharding == "fsdp" and cramped.notes[0].startswith("FSDP (full fine-tuning that does not")
    on_cpu = resolved("cpu", 0)
    assert on_cpu.runtime.sharding == "ddp" and on_cpu.notes[0].startswith("DDP (on the CPU")


def test_a_method_or_mode_fsdp_does_not_shard_is_ddp_without_an_estimate(monkeypatch, tmp_path):
    from workbench.run.spec import JobSpec

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(sharding, "smallest_gpu", lambda: pytest.fail("no GPU asked about"))
    for method, p in (("ppo", SimpleNamespace(mode="full")), ("sft", SimpleNamespace(mode="lora"))):
        spec = JobSpec(id="r", project="p", method=method, base_model="tiny", params={}, train=[],
                       runtime=Runtime(device="cuda", processes=2))
        sharding.resolve(spec, rank_job(spec, tmp_path, 1), p, tmp_path / "no-model")  # not rank 0: not written
        assert spec.runtime.sharding == "ddp" and not (tmp_path / "job.toml").exists()


def test_the_step_estimate_of_auto_counts_a_reference_where_the_method_keeps_one(tiny_model):
    from workbench.data.memory import estimate_bytes, model_shape

    shape = model_shape(tiny_model)
    sft = SimpleNamespace(batch_size=2, max_length=64)
    alone = sharding.step_bytes("sft", sft, tiny_model, "bf16")
    assert alone == estimate_bytes(shape, 2, 64, full=True, weight_width=2)
    assert sharding.step_bytes("dpo", sft, tiny_model, "bf16") == alone + shape.params * 2  # the reference's weights
    assert sharding.step_bytes("dpo", sft, tiny_model, "fp32") - sharding.step_bytes("sft", sft, tiny_model, "fp32") \
        == shape.params * 4
    # GRPO has no max_length: a step's sequences are a prompt and a completion; a reference only with a KL term
    grpo = SimpleNamespace(batch_size=2, max_completion_length=64, beta=0.0)
    assert sharding.step_bytes("grpo", grpo, tiny_model, "bf16") == estimate_bytes(shape, 2, 512 + 64, True, 2)
    grpo.beta = 0.05
    assert sharding.step_bytes("grpo", grpo, tiny_model, "bf16") == \
        estimate_bytes(shape, 2, 512 + 64, True, 2) + shape.params * 2
