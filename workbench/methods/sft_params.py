"""Parameters of supervised fine-tuning (LoRA, QLoRA, full or the output head alone)."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.methods.kit import common_params as common
from workbench.params import build, param


@dataclass
class SFTParams:
    mode: str = common.mode()
    learning_rate: float = param(2e-4, "Step size of the optimiser (LoRA ~1e-4..5e-4, full ~1e-5..5e-5).",
                                 min=1e-8, max=1.0)
    epochs: float = param(3.0, "Passes over the training data (ignored when max_steps > 0).", min=0.01, max=1000)
    max_steps: int = common.max_steps()
    batch_size: int = param(4, "Records per device per step.", min=1, max=4096)
    grad_accum: int = common.grad_accum()
    max_length: int = param(512, "Tokens kept per record; longer records are truncated.", min=16, max=131072)
    warmup: float = param(0.03, "Warm-up: a ratio of total steps if below 1, else a number of steps.", min=0)
    scheduler: str = common.scheduler()
    weight_decay: float = common.weight_decay()
    lora_r: int = common.lora_r()
    lora_alpha: int = common.lora_alpha()
    lora_dropout: float = common.lora_dropout()
    target_modules: str = common.target_modules()
    use_dora: bool = common.use_dora()
    use_rslora: bool = common.use_rslora()
    quant_type: str = common.quant_type()
    double_quant: bool = common.double_quant()
    compute_dtype: str = common.compute_dtype()
    eval_fraction: float = param(0.1, "Share of the data held out for eval loss when the project has no eval set.",
                                 min=0, max=0.5, group="schedule")
    eval_steps: int = common.eval_steps()
    save_steps: int = common.save_steps()
    logging_steps: int = common.logging_steps()
    gradient_checkpointing: bool = common.gradient_checkpointing()


def project_settings(project, max_length: int | None = None) -> SFTParams:
    """The SFT parameters of a project (its `sft` defaults, else the method's), `max_length` overridden."""
    chosen = build(SFTParams, project.defaults.get("sft", {}))
    if max_length is not None:
        chosen.max_length = max_length
    return chosen
