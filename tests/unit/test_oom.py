"""The change that fits after an out-of-memory (`workbench.jobs.oom`), and its message."""

from __future__ import annotations

import pytest

from workbench.jobs.errors import humanize
from workbench.jobs.oom import Where, choose, is_oom, message, smaller_batch

LORA = {"batch_size": 8, "grad_accum": 2, "gradient_checkpointing": False, "mode": "lora", "max_length": 1024}


@pytest.mark.parametrize("batch, accum, expected", [
    (8, 2, (4, 4)), (6, 1, (3, 2)), (5, 1, (1, 5)), (3, 3, (1, 9)), (2, 1, (1, 2)), (1, 4, None), (4, 1024, None),
])
def test_smaller_batch_keeps_the_effective_batch(batch, accum, expected):
    assert smaller_batch(batch, accum) == expected


def test_a_batch_above_one_is_split_first():
    change = choose(LORA, "cuda")
    assert change.params == {"batch_size": 4, "grad_accum": 4} and change.retry
    assert "the same effective batch of 16" in change.says


def test_batch_one_turns_on_checkpointing():
    change = choose({**LORA, "batch_size": 1}, "cuda")
    assert change.params == {"gradient_checkpointing": True} and change.retry


def test_checkpointing_on_offers_qlora_on_a_gpu_without_taking_it():
    change = choose({**LORA, "batch_size": 1, "gradient_checkpointing": True}, "cuda")
    assert change.params == {"mode": "qlora"} and not change.retry


def test_without_cuda_qlora_is_skipped_for_a_smaller_max_length():
    change = choose({**LORA, "batch_size": 1, "gradient_checkpointing": True}, "cpu")
    assert change.params == {"max_length": 512} and not change.retry
    assert "qlora needs a CUDA GPU" in change.says and "nothing else is left" in change.says


def test_already_qlora_leaves_only_a_smaller_max_length():
    change = choose({**LORA, "batch_size": 1, "gradient_checkpointing": True, "mode": "qlora"}, "cuda")
    assert change.params == {"max_length": 512} and not change.retry
    assert "qlora is on" in change.says and "longer records are cut" in change.says


def test_a_method_without_a_batch_size_gets_the_general_advice():
    assert choose({"learning_rate": 1e-4}, "cuda") is None
    text = message(Where(step=7), "peak 3.0 GiB of RAM", None)
    assert text.startswith("Out of memory at step 7 (peak 3.0 GiB of RAM).") and "gradient_checkpointing" in text


def test_message_names_step_batch_peak_and_change():
    where = Where(step=12, rows=8, length=512)
    text = message(where, "peak 21.3 GiB on the GPU", choose(LORA, "cuda"), offer_retry=True)
    assert text.startswith("Out of memory at step 12 on a batch of 8 x 512 tokens (peak 21.3 GiB on the GPU).")
    assert "`--set batch_size=4 --set grad_accum=4`" in text and "oom_retry=true" in text
    assert Where(rows=2, length=9, phase="memory probe").describe() == \
        "in the memory probe, before step 1 on a batch of 2 x 9 tokens"


def test_humanize_recognises_every_out_of_memory():
    import torch

    for exc in (torch.OutOfMemoryError("CUDA out of memory."), MemoryError(),
                RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate; out of memory")):
        assert is_oom(exc)
        kind, text = humanize(exc)
        assert kind == "out_of_memory" and text.startswith("Out of memory before training began (peak ")
    assert not is_oom(RuntimeError("boom"))


def test_the_retry_is_a_runtime_setting_of_true_or_false():
    from workbench.jobs.targets import TargetError, runtime_from

    assert runtime_from(None, []).oom_retry is True  # on unless turned off
    assert runtime_from(None, ["oom_retry=false"]).oom_retry is False
    assert runtime_from(None, ["oom_retry=True"]).oom_retry is True
    with pytest.raises(TargetError, match="oom_retry must be a bool, not 'maybe'"):
        runtime_from(None, ["oom_retry=maybe"])


def test_peak_names_the_gpu_size_and_what_was_asked_for():
    from workbench.jobs.oom import GIB, peak_text

    error = RuntimeError("CUDA out of memory. Tried to allocate 1.95 GiB. GPU 0 has a total capacity of 79.10 GiB")
    assert peak_text(3 * GIB, int(78.2 * GIB), int(79.1 * GIB), error) == \
        "peak 78.2 of 79.1 GiB on the GPU, 1.95 GiB more asked for"
    assert peak_text(3 * GIB, 0) == "peak 3.0 GiB of RAM"
    assert peak_text(0, 0) == "peak unknown"
