"""The fast path: `auto` resolved per machine and recorded in the spec, refusals in one line, and packing
that leaves every record's loss as it was (per-record losses packed vs unpacked on the tiny model)."""

from __future__ import annotations

import pytest

from workbench.methods.kit import fast_path
from workbench.methods.kit.fast_path import FastPath, resolve
from workbench.methods.sft_params import SFTParams
from workbench.params import ParamError, build
from workbench.run.spec import JobSpec, Runtime


def spec_on(device: str, precision: str = "fp32", **params) -> tuple[JobSpec, SFTParams]:
    p = build(SFTParams, params)
    return JobSpec(id="r", project="p", method="sft", base_model="b", params=vars(p).copy(), train=[],
                   runtime=Runtime(device=device, precision=precision)), p


def test_auto_on_the_cpu_packs_nothing_and_takes_sdpa_with_reasons_in_the_spec():
    spec, p = spec_on("cpu")
    chosen = resolve(spec, p)
    assert chosen == FastPath(packing=False, attention="sdpa", liger=False, compile=False, fused_adamw=False)
    assert (spec.params["packing"], spec.params["attention"], spec.params["liger"]) == ("off", "sdpa", "off")
    assert (p.packing, p.attention, p.liger) == ("off", "sdpa", "off")
    assert "Packing off: each row holds one record (CPU; set packing=on to pack)." in spec.notes
    assert "Attention: SDPA (flash-attention needs a CUDA GPU)." in spec.notes
    assert "Liger kernels off (they need CUDA)." in spec.notes
    resolve(spec, p)  # a resume resolves again: the notes are not repeated
    assert len(spec.notes) == len(set(spec.notes))
    assert chosen.config_kwargs() == {"use_liger_kernel": False, "torch_compile": False}
    assert chosen.model_kwargs() == {"attn_implementation": "sdpa"}


def test_auto_on_a_gpu_packs_and_fuses_adamw(monkeypatch):
    monkeypatch.setattr(fast_path, "installed", lambda package: package == "flash_attn")
    monkeypatch.setattr(fast_path, "gpu_capability", lambda: (9, 0))
    spec, p = spec_on("cuda", "bf16")
    chosen = resolve(spec, p)
    assert chosen == FastPath(packing=True, attention="flash_attention_2", liger=False, fused_adamw=True)
    assert "Liger kernels off (the package liger-kernel is not installed)." in spec.notes
    assert chosen.config_kwargs() == {"use_liger_kernel": False, "torch_compile": False, "packing": True,
                                      "packing_strategy": "bfd", "padding_free": True, "eval_packing": False,
                                      "optim": "adamw_torch_fused"}
    monkeypatch.setattr(fast_path, "gpu_capability", lambda: (7, 5))  # a T4: no flash-attention 2
    spec, p = spec_on("cuda", "fp16")
    chosen = resolve(spec, p)
    assert (chosen.attention, chosen.packing, chosen.fused_adamw) == ("sdpa", False, True)
    assert any("compute capability 8.0), this one is 7.5" in n for n in spec.notes)
    # packed, a step of b rows is one row SDPA attends to through a dense mask: packing waits for flash-attention
    assert ("Packing off: each row holds one record (with SDPA a padding-free batch attends as one long masked "
            "row; flash-attention packs it cheaply; set packing=on to pack).") in spec.notes
    spec, p = spec_on("cuda", "bf16", packing="on")
    assert resolve(spec, p).packing and spec.params["packing"] == "on"  # asked for: packed all the same


@pytest.mark.parametrize(("params", "message"), [
    ({"attention": "flash_attention_2"}, "attention=flash_attention_2 cannot run here: flash-attention needs a "
                                         "CUDA GPU. Use attention=sdpa."),
    ({"liger": "on"}, "liger=on needs a CUDA GPU and the liger-kernel package (this run is on the CPU). "
                      "Use liger=off."),
])
def test_a_choice_the_machine_cannot_honour_is_refused_in_one_line(params, message):
    spec, p = spec_on("cpu", **params)
    with pytest.raises(ParamError) as info:
        resolve(spec, p)
    assert str(info.value) == message


def test_packing_on_the_cpu_when_asked():
    spec, p = spec_on("cpu", packing="on", compile=True)
    chosen = resolve(spec, p)
    assert chosen.packing and chosen.compile and spec.params["packing"] == "on"
    assert "torch.compile on: the first steps include the compilation." in spec.notes


def per_record_losses(trainer, model, batch) -> dict[tuple, tuple[float, int]]:
    """{record's input ids: (sum of its token losses, tokens with loss)} for one collated batch, through
    the trainer's own fused loss head."""
    import torch

    with torch.no_grad():
        out = model(**{**batch, "use_cache": False}, fused_lm_head=True)
    ids, losses, mask = batch["input_ids"], -out.log_probs, out.label_mask
    found = {}
    if "position_ids" in batch:  # one flattened row: records start where the position ids restart
        starts = (batch["position_ids"][0] == 0).nonzero().flatten().tolist() + [ids.shape[1]]
        spans = [(0, a, b) for a, b in zip(starts, starts[1:])]
    else:
        spans = [(row, 0, int(batch["attention_mask"][row].sum())) for row in range(ids.shape[0])]
    for row, a, b in spans:
        found[tuple(ids[row, a:b].tolist())] = (float(losses[row, a:b].sum()), int(mask[row, a:b].sum()))
    return found


def test_packed_records_keep_their_losses(tiny_model, tmp_path):
    """Packing puts several records in one row; each record's loss (and its count of trained tokens) is
    what it was alone in an unpacked batch: no record attends to another, no label moves."""
    import torch
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from workbench import models
    from workbench.data.render import tokenize

    torch.set_num_threads(1)
    tokenizer = models.load_tokenizer(tiny_model)
    rows = [{"prompt": [{"role": "user", "content": f"Spell {word}."}],
             "completion": [{"role": "assistant", "content": " ".join(word * (i % 3 + 1))}]}
            for i, word in enumerate(["cat", "horse", "elephant", "ox", "giraffe", "bee"])]
    data = tokenize(rows, tokenizer)
    found = {}
    for packing in (False, True):
        torch.manual_seed(0)
        model = models.load_causal_lm(tiny_model)
        chosen = FastPath(packing=packing, attention="sdpa")
        config = SFTConfig(output_dir=str(tmp_path / str(packing)), per_device_train_batch_size=6, max_length=128,
                           use_cpu=True, report_to="none", disable_tqdm=True, completion_only_loss=True,
                           **chosen.config_kwargs())
        trainer = SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer,
                             peft_config=LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                    task_type="CAUSAL_LM", lora_dropout=0.0))
        rows_seen = len(trainer.train_dataset)
        batch = trainer.data_collator([trainer.train_dataset[i] for i in range(rows_seen)])
        found[packing] = (rows_seen, per_record_losses(trainer, trainer.model, batch))
    (unpacked_rows, alone), (packed_rows, packed) = found[False], found[True]
    assert unpacked_rows == 6 and packed_rows < 6  # several records did share a row
    assert set(packed) == set(alone)
    for record, (loss, tokens) in alone.items():
        assert tokens > 0 and packed[record][1] == tokens
        assert packed[record][0] == pytest.approx(loss, rel=1e-4, abs=1e-4)


def test_the_estimate_sizes_a_packed_step_by_rows_of_max_length(monkeypatch):
    """Packed, every row is filled up to max_length whatever the records' lengths: the estimate and the
    preflight size a step by it, with the same decision as the worker's."""
    assert not fast_path.packs(build(SFTParams, {}), "cpu", "fp32")
    assert fast_path.packs(build(SFTParams, {"packing": "on"}), "cpu", "fp32")
    assert not fast_path.packs(build(SFTParams, {}), "cuda", "bf16")  # no flash-attn here
    monkeypatch.setattr(fast_path, "installed", lambda package: package == "flash_attn")
    monkeypatch.setattr(fast_path, "gpu_capability", lambda: (9, 0))
    assert fast_path.packs(build(SFTParams, {}), "cuda", "bf16")
    assert not fast_path.packs(build(SFTParams, {"attention": "sdpa"}), "cuda", "bf16")
    spec, p = spec_on("cuda", "bf16")
    assert resolve(spec, p).packing == fast_path.packs(build(SFTParams, {}), "cuda", "bf16")
