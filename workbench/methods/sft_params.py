"""Parameters of supervised fine-tuning (LoRA, QLoRA, full or the output head alone)."""

from __future__ import annotations

from workbench.methods.kit import common_params as common
from workbench.methods.kit.fast_path import SPEED
from workbench.params import Fields, build, param, paramclass


@paramclass
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
    _optimiser: Fields = common.OPTIMISER
    _lora: Fields = common.LORA
    _qlora: Fields = common.QLORA
    eval_fraction: float = param(0.1, "Share of the data held out for eval loss when the project has no eval set.",
                                 min=0, max=0.5, group="schedule")
    _schedule: Fields = common.SCHEDULE
    sample_count: int = param(0, "At each eval, show the model's greedy answers to this many held-out prompts "
                                 "beside their reference (0: none). Costs a generation per eval: 2 prompts x 64 "
                                 "tokens took as long as 1-2 training steps of 4 records on a CPU (135M model), "
                                 "more on a GPU, where training is fast next to generating.",
                              min=0, max=64, group="schedule")
    sample_max_tokens: int = param(64, "Longest greedy answer shown at an eval (see sample_count).", min=1,
                                   max=4096, group="schedule")
    _speed: Fields = SPEED


def project_settings(project, max_length: int | None = None) -> SFTParams:
    """The SFT parameters of a project (its `sft` defaults, else the method's), `max_length` overridden."""
    chosen = build(SFTParams, project.defaults.get("sft", {}))
    if max_length is not None:
        chosen.max_length = max_length
    return chosen
