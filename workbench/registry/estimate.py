"""Trainable parameters and memory per training mode and method, before a run starts.

The model is built on the meta device from its config alone (no weight is read), each mode
is applied to it the way the worker applies it (the real LoraConfig through PEFT, the head
alone for last_layer), and its parameters are counted. Memory is the peak of one step, in parts:
weights in their dtype (4-bit for QLoRA's frozen linear layers); gradients and AdamW moments of
what trains; activations of the training pass (per layer and token, a term in the square of the length on a
CPU where adapters run dropout, and the logits), over the data's longest record (at most max_length) or
longest prompt; frozen models beside it (DPO's and KTO's reference where no adapter can be
switched off, the RL reference when beta > 0, a teacher, a reward model); sampling for GRPO, RLOO,
GKD and PPO (the KV cache of every sequence sampled at once, the prompt's logits, PPO's rollout
passes), counted where it exceeds the training pass, the two phases never overlapping; and the
runtime (the interpreter and libraries on a CPU, the CUDA context on a GPU). The coefficients are
checked against the measured peak of the real worker (bench/estimate.py, tests/e2e/test_estimate_peak.py).
`workbench estimate` prints it; the method screen runs that command in a child process, so the UI
never imports torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench import models, registry
from workbench import params as params_mod
from workbench import project as projects
from workbench.data.memory import free_bytes
from workbench.methods.kit import fast_path
from workbench.registry.lengths import longest_prompt, longest_record

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
    reference: int = 0  # frozen models beside it: a reference, a teacher, a reward model
    generation: int = 0  # sampling: the KV cache of every sequence sampled at once, and a rollout's logits
    runtime: int = 0  # the process itself: interpreter and libraries on a CPU, the CUDA context on a GPU

    @property
    def memory(self) -> int:
        return (self.weights + self.gradients + self.optimizer + self.activations + self.reference
                + self.generation + self.runtime)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "memory": self.memory}


# The parts of a mode's memory, in the order a breakdown lists them.
PARTS = ("weights", "gradients", "optimizer", "activations", "reference", "generation", "runtime")


@dataclass
class Workload:
    """What one step of a method holds at its peak, in sequences and tokens (see `workload`)."""

    sequences: int  # sequences in one forward and backward pass
    length: int  # tokens in each
    logit_positions: int  # positions of each sequence whose vocabulary logits are computed
    logit_copies: float  # fp32 vocabulary-sized tensors alive per such position at the peak
    frozen: list[tuple[Any, int | None]] = field(default_factory=list)  # (config, num_labels) of frozen models
    copies_policy: bool = False  # a frozen copy of the policy (a reference, when no adapter can be switched off)
    sampled: tuple[int, int, int] | None = None  # (sequences sampled at once, prompt tokens, completion tokens)
    max_length: int = 0  # the method's max_length, when `length` is the data's longest record below it
    packed: bool = False  # rows packed up to max_length (SFT's packing): `length` is max_length
    rollout_passes: int = 0  # no-grad passes over the whole sampled batch whose logits are kept (PPO)
    prefill_logits: bool = True  # sampling computes the prompt's logits at every position (not PPO's generate)
    own_loop: bool = False  # the method's own loop, not a transformers Trainer (OWN_LOOP_SAVES)
    dropout: bool = True  # the trainer leaves the model's dropout on (DROPOUT_OFF: TRL's switch it off)
    fused_head: bool = False  # logits in tiles (FUSED_HEAD): `logit_copies` of a whole vocabulary up to HEAD_TILE
    notes: list[str] = field(default_factory=list)



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


@dataclass
class Shape:
    hidden: int
    layers: int
    vocab: int
    intermediate: int
    kv_width: int  # key (= value) values per token per layer: kv heads x head dim
    heads: int


def shape_of(config) -> Shape:
    text = config.get_text_config()
    hidden, heads = int(text.hidden_size), int(text.num_attention_heads)
    head_dim = int(getattr(text, "head_dim", None) or hidden // heads)
    kv_heads = int(getattr(text, "num_key_value_heads", None) or heads)
    return Shape(hidden=hidden, layers=int(text.num_hidden_layers), vocab=int(text.vocab_size),
                 intermediate=int(getattr(text, "intermediate_size", None) or 4 * hidden), kv_width=kv_heads * head_dim,
                 heads=heads)


# Values a decoder layer keeps per token for its backward pass: the inputs of its norms, projections,
# attention and MLP, per hidden and per MLP unit (calibrated on SmolLM2's Llama layers against measured peaks,
# bench/estimate.py); an adapter's dropout keeps one more copy of the input of each layer it adapts.
ACTIVATION_PER_HIDDEN = 14
ACTIVATION_PER_MLP_UNIT = 4
LORA_PER_HIDDEN = 6
LORA_PER_MLP_UNIT = 1
# A CPU pass whose adapters run dropout holds more per token the longer its sequences: batch x heads x length^2
# values per layer, this many times (measured on the embedded model: SFT+LoRA holds 2.1 MiB a token before its
# backward at 128 tokens, 3.1 at 256). It is not SDPA's attention weights: on a CPU (torch 2.13) SDPA saves
# none, with or without a padding mask, and a pass without dropout holds the same per token at any length
# (DPO: 1.3 MiB a token at 256, padded or not). On a GPU it is left out.
CPU_ATTENTION_COPIES = 3
# Trainers whose TRL config switches the model's dropout off by default (disable_dropout=True): their adapters
# keep no dropout copies (DPO, KTO, the reward model, ORPO, GKD).
DROPOUT_OFF = ("dpo", "kto", "reward", "orpo", "gkd")
# fp32 vocabulary-sized tensors alive per logit position at the peak of a training pass: the logits, their
# log-softmax and both gradients, and what the trainer adds (TRL's token accuracy and entropy for SFT, both
# distributions for distillation, the generalised JSD of GKD). Measured on the tiny model, whose other terms are
# negligible (bench/estimate.py --model tiny).
# GRPO and RLOO: TRL's scoring pass keeps about five over the whole sequence, prompt included (measured against
# prompts of 30 and 216 tokens, completions of 16 and 64). PPO's own loop: about 9.4 per completion position (its
# policy, value, reference and reward passes over the rollout), none for the prompt.
LOGIT_COPIES = {"default": 5.5, "distill": 3.0, "gkd": 14.5, "grpo": 5.0, "rloo": 5.0, "ppo": 9.4}
# TRL 1.16's SFT, DPO, KTO, GRPO and RLOO trainers score through a fused LM head (trl add_fused_lm_head): on a
# CPU every position at once in tiles of at most HEAD_TILE tokens x vocabulary columns, whose backward sets the
# peak of the pass with about 8.2 tiles alive (measured on the embedded model, SFT, DPO and GRPO alike). On
# SmolLM2's vocabulary of 49152 that is the 5.5 (GRPO/RLOO: 5.0) copies above; a larger vocabulary, or more
# positions than a tile, holds no more. On a GPU the head folds tiles in place (fewer): a worst case there.
FUSED_HEAD = ("sft", "dpo", "kto", "grpo", "rloo")
HEAD_TILE = (4096, 32768)
MEASURED_VOCAB = 49152  # the vocabulary LOGIT_COPIES were measured on (SmolLM2's)
# Sampling: the prompt's first pass (prefill) computes logits for every prompt position, this many copies.
PREFILL_COPIES = 3.3
# The worker before any model: the interpreter with torch, transformers, peft, trl and datasets loaded, the
# tokenizer and the data (530 MiB measured on a CPU, torch 2.13, transformers 5.24); on a GPU, the memory of the
# CUDA context and kernels (a figure from CUDA 12 on recent cards, not measured here).
RUNTIME = {"cpu": 530 * 1024 ** 2, "cuda": 600 * 1024 ** 2}
# PPO's loop is the workbench's own, not a transformers Trainer: its process holds about 80 MiB less on a CPU.
OWN_LOOP_SAVES = 80 * 1024 ** 2


SAMPLES_PROMPTS = ("grpo", "rloo", "ppo")  # methods whose rows are prompts (`longest_prompt`), not records


def workload(method_name: str, p: Any, config, project_name: str, base: str,
             datasets: tuple[str, ...] = (), device: str = "cpu", precision: str = "fp32") -> Workload:
    """Sequences, tokens and frozen models of one step of `method_name` with params `p` on the project's training
    data (`datasets` when named)."""
    limit = int(getattr(p, "max_length", 512))
    length = limit
    packed = method_name == "sft" and fast_path.packs(p, device, precision)  # every row filled up to max_length
    if method_name not in SAMPLES_PROMPTS and not packed:  # rows are records: the worst batch holds its longest
        length = longest_record(project_name, method_name, base, limit, datasets)
    found = _workload(method_name, p, length, project_name, base, datasets)
    found.dropout = method_name not in DROPOUT_OFF
    found.fused_head = method_name in FUSED_HEAD
    found.packed = packed
    if length < limit:
        found.max_length = limit
    return found


def _workload(method_name: str, p: Any, length: int, project_name: str, base: str,
              datasets: tuple[str, ...]) -> Workload:
    batch = int(getattr(p, "batch_size", 1))
    adapter = getattr(p, "mode", "full") in ("lora", "qlora")
    per_record = SEQUENCES_PER_RECORD.get(method_name, 1)
    if method_name in NUM_LABELS:  # a score head: no vocabulary logits
        return Workload(batch * per_record, length, 0, 0)
    if method_name in ("dpo", "kto"):  # the reference: the adapter switched off, else a frozen copy
        return Workload(batch * per_record, length, length, LOGIT_COPIES["default"], copies_policy=not adapter)
    if method_name in ("grpo", "rloo"):
        prompt = longest_prompt(project_name, method_name, base, datasets)
        completion = int(p.max_completion_length)
        found = Workload(batch, prompt + completion, prompt + completion, LOGIT_COPIES[method_name],
                         copies_policy=p.beta > 0 and not adapter,
                         sampled=(batch * int(getattr(p, "grad_accum", 1)), prompt, completion))
        found.frozen += reward_model_configs(project_name, p)
        return found
    if method_name == "ppo":
        prompt = min(longest_prompt(project_name, method_name, base, datasets), int(p.max_prompt_length))
        completion = int(p.max_new_tokens)
        found = Workload(int(p.mini_batch_size), prompt + completion, completion + 1, LOGIT_COPIES["ppo"],
                         copies_policy=not adapter,
                         sampled=(batch, prompt, completion), rollout_passes=2, prefill_logits=False,
                         own_loop=True)
        found.frozen += reward_model_configs(project_name, p)
        return found
    if method_name in ("distill", "gkd"):  # the teacher's logits and both distributions beside the student's
        teacher = teacher_config(project_name, p)
        found = Workload(batch, length, length, LOGIT_COPIES[method_name])
        if method_name == "distill" and getattr(p, "teacher_cache", "none") == "topk":
            pass  # the teacher ran once before training; its top-k are read from disk
        elif teacher is not None:
            found.frozen.append((teacher, None))
        if method_name == "gkd":
            found.sampled = (batch, length, int(p.max_new_tokens))
        return found
    return Workload(batch * per_record, length, length, LOGIT_COPIES["default"])  # sft, orpo, any other LM method


def reward_model_configs(project_name: str, p: Any) -> list[tuple[Any, int | None]]:
    """The reward model a sampling method scores with, as a frozen (config, 1 label); none when unset or unreadable."""
    ref = str(getattr(p, "reward_model", "") or "").strip()
    if not ref:
        return []
    try:
        from workbench.rewards.model import reward_model_folder

        return [(base_config(str(reward_model_folder(project_name, ref))), 1)]
    except Exception:  # noqa: BLE001 - the run itself reports a bad reward model; the estimate leaves it out
        return []


def teacher_config(project_name: str, p: Any):
    ref = str(getattr(p, "teacher", "") or "").strip()
    if not ref:
        return None
    from workbench.run.model_refs import RefError, resolve_ref

    try:
        return base_config(resolve_ref(project_name, ref))
    except (RefError, models.ModelError, OSError, ValueError):
        return None


def frozen_bytes(config, num_labels: int | None, width: int) -> int:
    return count(meta_model(config, num_labels))[1] * width


def mode_estimate(config, p: Any, mode: str, num_labels: int | None, width: int, work: Workload,
                  device: str = "cpu") -> ModeEstimate:
    """Counts and memory of one mode for one step of `work`.

    The peak of a step: what stays (weights, optimizer state, frozen models, the runtime) plus the larger
    of its two phases, which never overlap: sampling (the KV cache, a rollout's logits) and the training
    pass (activations, logits, gradients)."""
    model = meta_model(config, num_labels)
    four_bit = quantised_params(model) if mode == "qlora" else 0
    shape = shape_of(config)
    model = apply_mode(model, p, mode, "SEQ_CLS" if num_labels else "CAUSAL_LM")
    trainable, total = count(model)
    compute = 2 if mode == "qlora" and getattr(p, "compute_dtype", "bfloat16") != "float32" else width
    tokens = work.sequences * work.length
    per_token = ACTIVATION_PER_HIDDEN * shape.hidden + ACTIVATION_PER_MLP_UNIT * shape.intermediate
    dropout = work.dropout and mode in ("lora", "qlora") and getattr(p, "lora_dropout", 0) > 0
    if dropout:
        per_token += LORA_PER_HIDDEN * shape.hidden + LORA_PER_MLP_UNIT * shape.intermediate
    if mode == "last_layer":  # nothing before the head needs a gradient: only the head's input is kept
        layers = tokens * shape.hidden * compute
    elif getattr(p, "gradient_checkpointing", False):  # each layer's input, and one layer recomputed at a time
        layers = tokens * shape.hidden * shape.layers * compute + tokens * per_token * compute
    else:
        layers = tokens * per_token * shape.layers * compute
    if device == "cpu" and dropout:
        layers += CPU_ATTENTION_COPIES * work.sequences * shape.heads * work.length ** 2 * shape.layers * compute
    positions, columns = work.sequences * work.logit_positions, shape.vocab
    if work.fused_head:  # one tile alive: the copies were measured on MEASURED_VOCAB columns, 1.5 tiles wide
        positions, columns = min(positions, HEAD_TILE[0]), min(columns, HEAD_TILE[1]) * MEASURED_VOCAB / HEAD_TILE[1]
    logits = int(positions * columns * 4 * work.logit_copies)
    # QLoRA: 4-bit linear layers, the rest 16-bit (`load_model`). Full and the output head: the weights that
    # train are fp32 (the 16-bit compute is autocast's), the frozen ones 16-bit.
    plain_width = width
    packed = FOUR_BIT_BYTES[bool(getattr(p, "double_quant", True))]
    weights = int((total - four_bit) * plain_width + four_bit * packed)
    if mode in ("full", "last_layer"):
        weights += trainable * (4 - plain_width)
    # every trained weight is fp32 (PEFT's adapters, the master weights): an fp32 gradient, two fp32 moments
    gradients, optimizer = trainable * 4, trainable * 8
    reference = sum(frozen_bytes(c, n, width) for c, n in work.frozen)
    if work.copies_policy:
        reference += count(meta_model(config, num_labels))[1] * width
    generation = 0
    if work.sampled:
        seqs, prompt, completion = work.sampled
        generation = 2 * shape.layers * shape.kv_width * compute * seqs * (prompt + completion)
        if work.prefill_logits:
            generation += int(PREFILL_COPIES * seqs * prompt * shape.vocab * 4)
        generation += work.rollout_passes * seqs * (completion + 1) * shape.vocab * 4 * 2
    training = layers + logits
    if generation > training + gradients:  # the sampling phase is the larger: it sets the peak
        generation -= training + gradients
    else:
        generation = 0
    runtime = RUNTIME.get(device, RUNTIME["cpu"])
    if work.own_loop and device == "cpu":
        runtime -= OWN_LOOP_SAVES
    return ModeEstimate(mode, trainable, total, weights, gradients, optimizer, training, reference, generation,
                        runtime)


def machine(device: str) -> tuple[str, str]:
    """(device, precision) as the worker would resolve them on this machine."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    bf16 = device == "cuda" and (not torch.cuda.is_available() or torch.cuda.is_bf16_supported())
    return device, "bf16" if bf16 else "fp32"


def estimate(project_name: str, method_name: str, values: dict[str, Any] | None = None,
             device: str = "auto", datasets: list[str] | None = None) -> dict[str, Any]:
    """Every mode the method offers, for the project's base model and these parameter values, on the project's
    training data of the method's kinds, or on `datasets` when named (as a run given them reads)."""
    import dataclasses

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
    found, chosen_work = [], None
    for mode in (m for m in MODE_ORDER if m in offered):
        as_mode = dataclasses.replace(p, mode=mode) if "mode" in info else p
        work = workload(method_name, as_mode, config, project_name, project.base_model, tuple(datasets or ()),
                        device, precision)
        found.append(mode_estimate(config, as_mode, mode, num_labels, width, work, device))
        if mode == getattr(p, "mode", "full") or chosen_work is None:
            chosen_work = work
    free, where = (None, "")
    if device == "cpu" or _has_cuda():
        free, where = free_bytes(device)
    return {
        "project": project_name, "method": method_name, "model": models.describe(project.base_model),
        "device": device, "precision": precision, "batch_size": getattr(p, "batch_size", 1),
        "max_length": getattr(p, "max_length", 512), "chosen": getattr(p, "mode", "full"),
        "step": step_words(chosen_work), "free_bytes": free, "where": where, "modes": [m.to_dict() for m in found],
    }


def step_words(work: Workload) -> str:
    """One step in words: "4 x 512 tokens", "4 x 212 tokens (the longest record; max_length 256)",
    "8 x (120 + 256) tokens, sampled 16 at once"."""
    cut = f" (the longest record; max_length {work.max_length})" if work.max_length else \
        " (packed rows)" if work.packed else ""
    if not work.sampled:
        return f"{work.sequences} x {work.length} tokens{cut}"
    seqs, prompt, completion = work.sampled
    return f"{work.sequences} x ({prompt} + {completion}) tokens{cut}, sampled {seqs} at once"


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def describe(report: dict[str, Any]) -> str:
    """The estimate as a small table for a terminal, and the chosen mode's memory part by part."""
    gib = 1024 ** 3
    step = report.get("step") or f"{report['batch_size']} x {report['max_length']} tokens"
    lines = [f"{report['model']} · {report['method']} · {report['device']} {report['precision']} · {step}",
             f"{'mode':<12}{'trainable':>14}{'total':>14}{'%':>8}{'memory':>11}"]
    for m in report["modes"]:
        mark = "*" if m["mode"] == report["chosen"] else " "
        share = 100 * m["trainable"] / m["total"] if m["total"] else 0
        lines.append(f"{m['mode'] + mark:<12}{m['trainable']:>14,}{m['total']:>14,}{share:>7.2f}%"
                     f"{m['memory'] / gib:>7.2f} GiB")
    chosen = next((m for m in report["modes"] if m["mode"] == report["chosen"]), None)
    if chosen is not None:
        lines.append("* = " + ", ".join(f"{name} {chosen[name] / gib:.2f}" for name in PARTS if chosen.get(name))
                     + " GiB")
    if report["free_bytes"] is not None:
        lines.append(f"{report['free_bytes'] / gib:.1f} GiB {report['where']}.")
    return "\n".join(lines)
