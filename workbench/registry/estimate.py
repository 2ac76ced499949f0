"""Trainable parameters and memory per training mode, before a run starts.

The model is built on the meta device from its config alone (no weight is read), each mode
is applied to it the way the worker applies it (the real LoraConfig through PEFT, the head
alone for last_layer), and its parameters are counted. Memory is rough, as in
`workbench.data.memory`: weights in their dtype (4-bit for QLoRA's frozen linear layers),
gradients and AdamW moments of what trains, and activations from batch x length x hidden x
layers. `workbench estimate` prints it; the method screen runs that command in a child
process, so the UI never imports torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workbench import models, registry
from workbench import params as params_mod
from workbench import project as projects
from workbench.data.memory import ModelShape, estimate_bytes, free_bytes

MODE_ORDER = ("full", "lora", "qlora", "last_layer")
# Methods that train a sequence classifier (classes as estimated); embed trains the base without its LM head
# (a pooled vector out), shaped like a one-output classifier.
NUM_LABELS = {"reward": 1, "classifier": 2, "embed": 1}
# A preference pair runs its chosen and rejected answers; a KTO answer runs beside its KL answer; an embedding
# triplet runs three texts.
SEQUENCES_PER_RECORD = {"reward": 2, "dpo": 2, "orpo": 2, "kto": 2, "embed": 3}
FOUR_BIT_BYTES = {True: 0.5 + 1 / 64 + 4 / (64 * 256), False: 0.5 + 4 / 64}  # nf4/fp4 + absmax, by double_quant


class EstimateError(ValueError):
    """The method or model cannot be estimated; the message says why."""


@dataclass
class ModeEstimate:
    mode: str
    trainable: int
    total: int
    weights: int
    gradients: int
    optimizer: int
    activations: int

    @property
    def memory(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "memory": self.memory}


def base_config(base: str):
    """The transformers config of a base model, read without loading (or converting) its weights."""
    from transformers import AutoConfig

    if base == "default":
        gguf = models.default_gguf()
    else:
        path = Path(base).expanduser()
        if not path.exists():
            raise models.ModelError(f"Base model '{base}' does not exist.")
        if models.is_adapter(path):
            adapter = json.loads((path / "adapter_config.json").read_text())
            return base_config(adapter["base_model_name_or_path"])
        if not (path.is_file() and path.suffix == ".gguf"):
            return AutoConfig.from_pretrained(path)
        gguf = path
    converted = models.cached_folder(gguf)
    if (converted / "config.json").exists():
        return AutoConfig.from_pretrained(converted)
    return AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)


def meta_model(config, num_labels: int | None):
    """The model on the meta device: its shapes and parameter sharing, no memory, no weights."""
    import copy

    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    with torch.device("meta"):
        if num_labels is None:
            return AutoModelForCausalLM.from_config(config)
        config = copy.deepcopy(config)
        config.num_labels = num_labels
        return AutoModelForSequenceClassification.from_config(config)


def count(model) -> tuple[int, int]:
    """(trainable, total) parameters; a shared (tied) parameter counts once."""
    trainable = total = 0
    for p in model.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return trainable, total


def quantised_params(model) -> int:
    """Parameters that QLoRA keeps in 4 bits: the linear layers of the base model (the head stays as it is)."""
    import torch

    from workbench.methods.kit.train_args import head_names

    heads = set(head_names(model))
    return sum(m.weight.numel() for name, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and name.split(".")[0] not in heads)


def apply_mode(model, p: Any, mode: str, task_type: str):
    """The meta model as `mode` trains it: adapters through PEFT, or everything frozen but the head."""
    import dataclasses
    import warnings

    import torch

    from workbench.methods.kit.train_args import peft_config, train_head_only

    if mode in ("lora", "qlora"):
        from peft import get_peft_model

        config = peft_config(dataclasses.replace(p, mode=mode), task_type,
                             ["score"] if task_type == "SEQ_CLS" else None)
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # PEFT reads a deprecated transformers attribute
            return get_peft_model(model, config)
    if mode == "last_layer":
        train_head_only(model)
    return model


def mode_estimate(config, p: Any, mode: str, num_labels: int | None, width: int, sequences: int) -> ModeEstimate:
    """Counts and memory of one mode for a batch of `p.batch_size` x `p.max_length` tokens."""
    model = meta_model(config, num_labels)
    four_bit = quantised_params(model) if mode == "qlora" else 0
    text = config.get_text_config()
    shape = ModelShape(params=0, hidden=int(text.hidden_size), layers=int(text.num_hidden_layers),
                       vocab=int(num_labels or text.vocab_size))
    model = apply_mode(model, p, mode, "SEQ_CLS" if num_labels else "CAUSAL_LM")
    trainable, total = count(model)
    batch, tokens = getattr(p, "batch_size", 1) * sequences, getattr(p, "max_length", 512)
    positions = batch * tokens
    logits = estimate_bytes(ModelShape(0, shape.hidden, 0, shape.vocab), batch, tokens, False, width)
    layers = estimate_bytes(shape, batch, tokens, False, width) - logits
    if mode == "last_layer":  # nothing before the head needs a gradient: only the head's input is kept
        layers = positions * shape.hidden * width
    elif getattr(p, "gradient_checkpointing", False):  # each layer's input, and one layer recomputed at a time
        layers = positions * shape.hidden * shape.layers * width + layers // max(1, shape.layers)
    activations = layers + logits
    # QLoRA: 4-bit linear layers; prepare_model_for_kbit_training keeps the rest in fp32.
    plain_width = 4 if mode == "qlora" else width
    packed = FOUR_BIT_BYTES[bool(getattr(p, "double_quant", True))]
    weights = int((total - four_bit) * plain_width + four_bit * packed)
    if mode in ("lora", "qlora"):  # PEFT keeps adapters in fp32: an fp32 gradient and two fp32 AdamW moments
        gradients, optimizer = trainable * 4, trainable * 8
    else:
        gradients, optimizer = trainable * width, trainable * 2 * width
    return ModeEstimate(mode, trainable, total, weights, gradients, optimizer, activations)


def machine(device: str) -> tuple[str, str]:
    """(device, precision) as the worker would resolve them on this machine."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    bf16 = device == "cuda" and (not torch.cuda.is_available() or torch.cuda.is_bf16_supported())
    return device, "bf16" if bf16 else "fp32"


def estimate(project_name: str, method_name: str, values: dict[str, Any] | None = None,
             device: str = "auto") -> dict[str, Any]:
    """Every mode the method offers, for the project's base model and these parameter values."""
    project = projects.load(project_name)
    method = registry.get(method_name)
    if method.kind != "train":
        raise EstimateError(f"{method.title} does not train a model: there is nothing to estimate.")
    p = params_mod.build(method.params, {**project.defaults.get(method_name, {}), **(values or {})})
    info = {i.name: i for i in params_mod.describe(method.params)}
    offered = info["mode"].choices if "mode" in info else ("full",)
    device, precision = machine(device)
    width = 2 if precision == "bf16" else 4
    config = base_config(project.base_model)
    num_labels = NUM_LABELS.get(method_name)
    sequences = SEQUENCES_PER_RECORD.get(method_name, 1)
    found = [mode_estimate(config, p, mode, num_labels, width, sequences) for mode in MODE_ORDER if mode in offered]
    free, where = (None, "")
    if device == "cpu" or _has_cuda():
        free, where = free_bytes(device)
    return {
        "project": project_name, "method": method_name, "model": models.describe(project.base_model),
        "device": device, "precision": precision, "batch_size": getattr(p, "batch_size", 1),
        "max_length": getattr(p, "max_length", 512), "chosen": getattr(p, "mode", "full"),
        "free_bytes": free, "where": where, "modes": [m.to_dict() for m in found],
    }


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def describe(report: dict[str, Any]) -> str:
    """The estimate as a small table for a terminal."""
    gib = 1024 ** 3
    lines = [f"{report['model']} · {report['method']} · {report['device']} {report['precision']} · "
             f"batch {report['batch_size']} x {report['max_length']} tokens",
             f"{'mode':<12}{'trainable':>14}{'total':>14}{'%':>8}{'memory':>11}"]
    for m in report["modes"]:
        mark = "*" if m["mode"] == report["chosen"] else " "
        share = 100 * m["trainable"] / m["total"] if m["total"] else 0
        lines.append(f"{m['mode'] + mark:<12}{m['trainable']:>14,}{m['total']:>14,}{share:>7.2f}%"
                     f"{m['memory'] / gib:>7.2f} GiB")
    if report["free_bytes"] is not None:
        lines.append(f"{report['free_bytes'] / gib:.1f} GiB {report['where']}; * = the chosen mode.")
    return "\n".join(lines)
