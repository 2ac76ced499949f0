"""The worker resolves the runtime for the machine it runs on: precision on GPUs with and without bf16."""

from __future__ import annotations

import pytest

from workbench.jobs import worker
from workbench.run import events as ev
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec, Runtime

torch = pytest.importorskip("torch")


def resolved(tmp_path, monkeypatch, bf16: bool, mode: str) -> JobSpec:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    spec = JobSpec(id="r", project="p", method="sft", base_model="b", params={"mode": mode}, train=[],
                   runtime=Runtime(threads=1))
    job = JobContext(spec=spec, run_dir=tmp_path, writer=ev.EventWriter(tmp_path / "events.jsonl", enabled=False))
    worker._resolve_runtime(spec, job)
    return spec


@pytest.mark.parametrize(("bf16", "mode", "precision"), [
    (True, "lora", "bf16"), (True, "full", "bf16"),
    (False, "lora", "fp16"), (False, "qlora", "fp16"),  # a T4 or V100: fp16 autocast, adapters in fp32
    (False, "full", "fp32"), (False, "last_layer", "fp32"),  # trained weights cannot be fp16 under the scaler
])
def test_precision_follows_the_gpu_and_the_mode(tmp_path, monkeypatch, bf16, mode, precision):
    spec = resolved(tmp_path, monkeypatch, bf16, mode)
    assert (spec.runtime.device, spec.runtime.precision) == ("cuda", precision)
    if precision == "fp16":
        assert "This GPU has no bf16: fp16 mixed precision, the adapters in fp32." in spec.notes
    if precision == "fp32":
        assert "This GPU has no bf16 and the trained weights cannot be fp16: fp32 weights." in spec.notes
