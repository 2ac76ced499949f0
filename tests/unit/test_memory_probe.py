"""The memory probe on a real SFT trainer of the tiny model: skipped when the estimate is far from the
limit, otherwise one forward and backward through the trainer's own loss that leaves no trace."""

from __future__ import annotations

import pytest

from workbench.methods.kit import memory_probe
from workbench.run import events as ev
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec, Runtime

torch = pytest.importorskip("torch")


@pytest.fixture
def sft_trainer(tiny_model, tmp_path):
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from workbench import models
    from workbench.data.render import tokenize

    torch.set_num_threads(1)
    tokenizer = models.load_tokenizer(tiny_model)
    rows = [{"prompt": [{"role": "user", "content": f"Count to {i}."}],
             "completion": [{"role": "assistant", "content": " ".join(str(k) for k in range(i))}]}
            for i in range(1, 9)]
    model = models.load_causal_lm(tiny_model)
    config = SFTConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=3, max_length=64, use_cpu=True,
                       report_to="none", disable_tqdm=True, completion_only_loss=True)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")
    return SFTTrainer(model=model, args=config, train_dataset=tokenize(rows, tokenizer),
                      processing_class=tokenizer, peft_config=lora)


def job_in(tmp_path) -> JobContext:
    spec = JobSpec(id="r1", project="p", method="sft", base_model="tiny", params={}, train=[],
                   runtime=Runtime(device="cpu", precision="fp32"))
    return JobContext(spec=spec, run_dir=tmp_path, writer=ev.EventWriter(tmp_path / "events.jsonl"))


def statuses(tmp_path) -> list[str]:
    return [e.message for e in ev.read_all(tmp_path / "events.jsonl") if isinstance(e, ev.Status)]


def test_a_batch_far_below_the_free_memory_is_not_probed(sft_trainer, tmp_path, monkeypatch):
    monkeypatch.setattr(memory_probe, "free_bytes", lambda device: (64 * 2**30, "available RAM"))
    called = []
    monkeypatch.setattr(sft_trainer, "compute_loss", lambda *a, **k: called.append(1))
    assert memory_probe.probe(sft_trainer, 3, job_in(tmp_path)) == 0
    assert not called
    [message] = statuses(tmp_path)
    assert message.startswith("no memory probe: the longest batch (")
    assert message.endswith("GiB of 64.0 GiB available RAM")


def test_a_batch_near_the_limit_is_probed_and_leaves_no_trace(sft_trainer, tmp_path, monkeypatch):
    need = memory_probe.estimate(sft_trainer.model, 3, 20)
    monkeypatch.setattr(memory_probe, "free_bytes", lambda device: (need * 2, "available RAM"))
    losses = []
    real = sft_trainer.compute_loss
    monkeypatch.setattr(sft_trainer, "compute_loss", lambda *a, **k: losses.append(real(*a, **k)) or losses[-1])
    rng = torch.random.get_rng_state()
    metrics = {mode: dict(found) for mode, found in sft_trainer._metrics.items()}
    tokens = memory_probe.probe(sft_trainer, 3, job_in(tmp_path))
    lengths = sorted((len(ids) for ids in sft_trainer.train_dataset["input_ids"]), reverse=True)
    assert tokens == sum(lengths[:3])
    assert len(losses) == 1 and losses[0].requires_grad and float(losses[0].detach()) > 0  # the trainer's own loss ran
    assert all(p.grad is None for p in sft_trainer.model.parameters())
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert {mode: dict(found) for mode, found in sft_trainer._metrics.items()} == metrics
    assert sft_trainer._total_train_tokens == 0
    [message] = statuses(tmp_path)
    assert message.startswith(f"checking memory on the longest batch ({tokens} tokens): about ")
