"""How the ranks of a multi-process run hold the model (`runtime.sharding`): DDP or FSDP.

DDP keeps the whole model, its gradients and its optimizer state on every rank; FSDP (torch's FSDP2,
`fully_shard`, built by accelerate's plugin from transformers' `fsdp` / `fsdp_config` arguments) splits
all three over the ranks, so that a full fine-tuning whose step does not fit one GPU trains on several.

- `auto`: FSDP for a full fine-tuning on several CUDA processes whose step, by the estimate of
  `workbench.data.memory` (and one more copy of the weights for a method that keeps a reference),
  needs more than `FIT_SHARE` of the smallest GPU; DDP otherwise. A teacher's size is not counted.
- `ddp`, `fsdp`: as asked. FSDP shards the full fine-tuning of the methods in `FSDP_METHODS` (those
  built on transformers' Trainer); with LoRA or QLoRA (a few trainable weights: DDP is the tool) or
  another method (PPO's own loop, sentence-transformers' embedding training) it is refused in one
  line before the run starts (`check`).

A reference model that TRL makes for DPO, KTO, GRPO and RLOO is sharded like the policy (TRL's
`prepare_fsdp`); a distillation teacher is held whole by each rank, on its GPU, as a frozen model
that only runs forward.

The rank resolves `auto` (`resolve`) and records the choice in job.toml, with its reason in the notes;
a resumed run keeps it, its checkpoints being in that format. Under FSDP each rank writes its shard of
the weights and of the optimizer into the staged checkpoint (torch.distributed.checkpoint), the memory
probe is skipped (it would run the unsharded model), gradient checkpointing is FSDP's own activation
checkpointing, and the final model is gathered to rank 0 and saved as a plain transformers folder
(`save_model`). Each rank loads the whole model into host memory (one copy a rank); `fully_shard` moves
it to the GPU a layer at a time, keeping that rank's part, so no GPU ever holds the whole model.

On the CPU (gloo) accelerate turns FSDP on only for GPU kinds of distribution, although torch's
`fully_shard` runs there too; `cpu_ranks` lets it, so that each CPU rank holds its share of the
weights and of the optimizer instead of a whole copy (and so that FSDP is tested on a machine with
no GPU).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from workbench.data.memory import GIB, estimate_bytes, model_shape
from workbench.jobs import ranks
from workbench.params import ParamError
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec, Runtime

# Recipes on transformers' Trainer, whose FSDP runs are tested (tests/e2e/test_fsdp.py, test_fsdp_methods.py).
FSDP_METHODS = ("sft", "classifier", "reward", "dpo", "kto", "orpo", "distill", "gkd", "grpo", "rloo")
PROMPT_TOKENS = 512  # a sampling method's prompt length, which its params do not bound
FIT_SHARE = 0.9  # `auto` shards when the step's estimate exceeds this share of one GPU's memory


class ShardingError(ParamError):
    """A `sharding` setting that cannot run with this method, mode or number of processes."""


def check(method: str, p: Any, runtime: Runtime) -> None:
    """Refuse, in one line and before anything is written, a sharding this run cannot have."""
    ranks.check(runtime)  # a value none of auto, ddp, fsdp; processes and GPUs that disagree
    if runtime.sharding != "fsdp":
        return
    mode = getattr(p, "mode", "full")
    if mode != "full":
        raise ShardingError(f"sharding=fsdp shards full fine-tuning; mode={mode} trains few enough weights for "
                            "each GPU to hold them: use sharding=ddp (or auto), or mode=full.")
    if method not in FSDP_METHODS:
        raise ShardingError(f"sharding=fsdp is available for {', '.join(FSDP_METHODS)}, not {method}: "
                            "use sharding=ddp (or auto).")
    if runtime.processes == 1:
        raise ShardingError("sharding=fsdp splits the model over several processes: set processes=2 or more.")


def decide(asked: str, method: str, mode: str, processes: int, device: str, need: int | None,
           gpu_bytes: int | None) -> tuple[str, str]:
    """(ddp or fsdp, the note that says why) for a run on `processes` ranks; `need` is the estimated
    memory of a step and `gpu_bytes` the smallest GPU's memory (None where unknown)."""
    shards = f"weights, gradients and optimizer state sharded over the {processes} processes (FSDP2)"
    if asked == "fsdp":
        return "fsdp", f"FSDP, as asked: {shards}."
    if asked == "ddp":
        return "ddp", "DDP, as asked: each process holds the whole model."
    if method not in FSDP_METHODS or mode != "full":
        why = f"mode={mode}" if mode != "full" else f"{method} is not sharded"
        return "ddp", f"DDP ({why}): each process holds the whole model."
    if device != "cuda" or need is None or not gpu_bytes:
        return "ddp", "DDP (on the CPU; sharding=fsdp shards it there too): each process holds the whole model."
    sizes = f"about {need / GIB:.1f} GiB a step by the estimate, one GPU has {gpu_bytes / GIB:.1f} GiB"
    if need > FIT_SHARE * gpu_bytes:
        return "fsdp", f"FSDP (full fine-tuning that does not fit one GPU: {sizes}): {shards}."
    return "ddp", f"DDP (full fine-tuning that fits one GPU: {sizes}): each process holds the whole model."


def resolve(spec: JobSpec, job: JobContext, p: Any, folder: Path) -> None:
    """In a rank of a multi-process run: `runtime.sharding` decided (the same way on every rank), recorded
    with its reason in the notes and, by rank 0, in job.toml at once. A one-process run is left as it is."""
    runtime = spec.runtime
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    if processes <= 1:
        if runtime.sharding == "fsdp":
            raise ShardingError("sharding=fsdp splits the model over several processes and this run has one: "
                                "set processes=2 or more.")
        return
    check(spec.method, p, runtime)
    need = gpu = None
    mode = getattr(p, "mode", "full")
    if runtime.sharding == "auto" and runtime.device == "cuda" and spec.method in FSDP_METHODS and mode == "full":
        need, gpu = step_bytes(spec.method, p, folder, runtime.precision), smallest_gpu()
    runtime.sharding, note = decide(runtime.sharding, spec.method, mode, processes, runtime.device, need, gpu)
    job.note(note)


def step_bytes(method: str, p: Any, folder: Path, precision: str) -> int:
    """The estimated memory of one unsharded step of a full fine-tuning: the trained model's, plus a copy
    of its weights where the method keeps a reference (DPO and KTO; GRPO and RLOO with a KL term)."""
    width = 2 if precision in ("bf16", "fp16") else 4  # the weights' bytes, as `train_args` loads them
    tokens = getattr(p, "max_length", 0) or PROMPT_TOKENS + getattr(p, "max_completion_length", 0)
    shape = model_shape(folder)
    need = estimate_bytes(shape, p.batch_size, tokens, full=True, weight_width=width)
    if method in ("dpo", "kto") or (method in ("grpo", "rloo") and getattr(p, "beta", 0)):
        need += shape.params * width
    return need


def smallest_gpu() -> int:
    """The memory of the smallest visible GPU: the same on every rank, which all see the same GPUs."""
    import torch

    return min(torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count()))


def sharded(runtime: Runtime) -> bool:
    return runtime.sharding == "fsdp" and int(os.environ.get("WORLD_SIZE", "1")) > 1


def trainer_settings(p: Any, runtime: Runtime) -> dict[str, Any]:
    """The TrainingArguments of FSDP2 (none for DDP): sharded checkpoints, and FSDP's own activation
    checkpointing in place of the trainer's gradient checkpointing (both at once repeat an all-gather)."""
    if not sharded(runtime):
        return {}
    return {"fsdp": True, "gradient_checkpointing": False, "fsdp_config": {
        "version": 2, "reshard_after_forward": True, "state_dict_type": "SHARDED_STATE_DICT",
        "activation_checkpointing": bool(getattr(p, "gradient_checkpointing", False))}}


@contextlib.contextmanager
def cpu_ranks(config):
    """Around a trainer's construction: on CPU ranks with an FSDP config, the accelerator made there runs
    FSDP (accelerate would fall back to DDP); elsewhere nothing changes."""
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if not (getattr(config, "fsdp_plugin_args", None) and config.use_cpu and several):
        yield
        return
    from accelerate import state
    from accelerate.utils import DistributedType

    original = state.AcceleratorState.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        plugin = kwargs.get("fsdp_plugin")
        if plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            self.distributed_type = DistributedType.FSDP
            self.fsdp_plugin = plugin
            # as accelerate records a GPU run's kind: every later AcceleratorState() copies it from here
            state.PartialState._shared_state["distributed_type"] = DistributedType.FSDP

    state.AcceleratorState.__init__ = init
    try:
        yield
    finally:
        state.AcceleratorState.__init__ = original


def save_model(trainer, out: Path) -> None:
    """`trainer.save_model`; under FSDP, every rank's shards gathered into a whole state dict on rank 0,
    which saves it from a plain copy of the model (the sharded one cannot be saved as a transformers folder)."""
    if not getattr(trainer, "is_fsdp_enabled", False):
        trainer.save_model(str(out))
        return
    import torch
    from torch.distributed.fsdp import FSDPModule

    state = trainer.accelerator.get_state_dict(trainer.model)  # a collective: every rank takes part
    if trainer.args.should_save:
        model = trainer.accelerator.unwrap_model(trainer.model)
        plain_cls = next(c for c in type(model).__mro__ if not issubclass(c, FSDPModule))
        with torch.device("meta"):
            plain = plain_cls(model.config)
        plain.load_state_dict(state, assign=True)
        plain.tie_weights()
        if getattr(model, "generation_config", None) is not None:  # a classifier's or reward model's has none
            plain.generation_config = model.generation_config
        plain.save_pretrained(str(out))
    trainer.accelerator.wait_for_everyone()
