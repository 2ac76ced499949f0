"""A rough estimate of the memory one training step needs, and what the machine has free.

Rough on purpose: it only has to say "this will likely not fit" before a run starts.
The worker's memory probe (`workbench.methods.kit.memory_probe`) gives the real answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

GIB = 1024 ** 3


@dataclass
class ModelShape:
    params: int
    hidden: int
    layers: int
    vocab: int


def model_shape(folder: Path) -> ModelShape:
    """Sizes read from `config.json`; the parameter count from the weight files' sizes."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    config = config.get("text_config", config)
    stored = str(config.get("dtype") or config.get("torch_dtype") or "float32")
    width = 4 if "32" in stored else 2
    weight_bytes = sum(p.stat().st_size for p in folder.glob("*.safetensors")) or \
        sum(p.stat().st_size for p in folder.glob("*.bin"))
    return ModelShape(params=weight_bytes // width, hidden=int(config.get("hidden_size", 0)),
                      layers=int(config.get("num_hidden_layers", 0)), vocab=int(config.get("vocab_size", 0)))


def estimate_bytes(shape: ModelShape, batch: int, tokens: int, full: bool, weight_width: int = 4) -> int:
    """Weights, plus gradients and AdamW moments when every weight trains (LoRA's are tiny),
    plus activations (~34 values per hidden unit per layer per token) and the logits
    (fp32, about three copies: logits, their softmax and its gradient)."""
    weights = shape.params * (4 if full else weight_width)  # a full fine-tuning's master weights are fp32
    training_state = shape.params * 12 if full else 0  # fp32 gradient + two Adam moments
    positions = batch * tokens
    activations = positions * shape.hidden * shape.layers * 34 * weight_width // 2
    logits = positions * shape.vocab * 4 * 3
    return weights + training_state + activations + logits


def free_bytes(device: str) -> tuple[int, str]:
    """(free bytes, where): the GPU's free memory on cuda, else the available RAM."""
    if device == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info()
        return int(free), "free GPU memory"
    import psutil

    return int(psutil.virtual_memory().available), "available RAM"
