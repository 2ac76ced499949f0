"""The fast path of a training run: packing, the attention kernel, Liger kernels, torch.compile and
the fused optimiser, each chosen for the hardware the worker runs on.

The choices are parameters of the method (`SPEED`, shown in the form under "Speed" and set with
`--set`), each `auto` by default; `resolve` turns `auto` into what this machine does best, writes
the resolved value back into the spec's params (so `job.toml` records what ran) and says why in the
spec's notes. An explicit choice the machine cannot honour is refused in one line before anything
loads.

- packing: TRL's best-fit-decreasing packing, padding-free: several records share a row, their
  position ids restart at each record and the attention mask is block-diagonal (flash-attention's
  varlen kernel, or the mask transformers builds from the position ids for SDPA), so no record
  sees another; the loss mask is the one each record had. On by default where flash-attention runs
  (its varlen kernel attends to each record alone, at no cost); off otherwise: TRL's padding-free
  batch is one row of every record of the step, which SDPA attends to through one dense mask of that
  whole length (the attention of a step of b rows then costs about b times as much), and on the CPU
  a step then holds the records it says.
- attention: SDPA by default; flash-attention 2 when the package is installed, the GPU is Ampere
  or newer and the weights are in 16 bits.
- liger: Liger's RMSNorm, RoPE and SwiGLU kernels on CUDA when `liger-kernel` is installed (the
  loss stays TRL's fused, chunked LM head, which never holds the whole logits).
- compile: `torch.compile` of the model, off unless asked (the first steps pay the compilation).
- the fused AdamW of torch on CUDA, always (same updates, one kernel).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from workbench.params import Fields, ParamError, param
from workbench.run.spec import JobSpec

SWITCH = ("auto", "on", "off")
ATTENTION = ("auto", "sdpa", "eager", "flash_attention_2")
FLASH_MIN_CAPABILITY = (8, 0)  # Ampere

SPEED = Fields(
    packing=param("auto", "Pack several records into each row, padding-free (each record attends only to itself, "
                  "its loss mask unchanged; a step then holds more records). auto: on with flash-attention.",
                  choices=SWITCH, group="speed"),
    attention=param("auto", "Attention kernel. auto: flash_attention_2 when installed on an Ampere or newer GPU "
                    "with 16-bit weights, else sdpa.", choices=ATTENTION, group="speed"),
    liger=param("auto", "Liger kernels (RMSNorm, RoPE, SwiGLU). auto: on CUDA when liger-kernel is installed.",
                choices=SWITCH, group="speed"),
    compile=param(False, "torch.compile the model (faster steps after a slow first one).", group="speed"),
)


@dataclass
class FastPath:
    packing: bool = False
    attention: str = "sdpa"
    liger: bool = False
    compile: bool = False
    fused_adamw: bool = False

    def model_kwargs(self) -> dict[str, Any]:
        """What `from_pretrained` takes (through `recipe.load`'s keywords)."""
        return {"attn_implementation": self.attention}

    def config_kwargs(self) -> dict[str, Any]:
        """What a TRL config takes (SFTConfig; `packing` only where the method packs)."""
        kw: dict[str, Any] = {"use_liger_kernel": self.liger, "torch_compile": self.compile}
        if self.packing:
            kw.update(packing=True, packing_strategy="bfd", padding_free=True, eval_packing=False)
        if self.fused_adamw:
            kw["optim"] = "adamw_torch_fused"
        return kw


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def gpu_capability() -> tuple[int, int]:
    import torch

    return torch.cuda.get_device_capability() if torch.cuda.is_available() else (0, 0)


def resolve(spec: JobSpec, p: Any, packs: bool = True) -> FastPath:
    """The fast path for `p`'s choices on the machine `spec.runtime` was resolved for; the resolved values
    written back into `spec.params` and `p`, the reasons appended to `spec.notes`. `packs`: the method can
    pack its data (SFT's records); others leave packing off whatever is asked."""
    runtime = spec.runtime
    cuda = runtime.device == "cuda"
    notes: list[str] = []
    chosen = FastPath(compile=bool(getattr(p, "compile", False)), fused_adamw=cuda)

    attention = getattr(p, "attention", "auto")
    sixteen = runtime.precision in ("bf16", "fp16")
    flash_ok = flash_runs(runtime.device, runtime.precision)
    if attention == "auto":
        chosen.attention = "flash_attention_2" if flash_ok else "sdpa"
        notes.append("Attention: flash-attention 2 (installed, Ampere or newer GPU, 16-bit weights)." if flash_ok
                     else f"Attention: SDPA ({why_not_flash(cuda, sixteen)}).")
    elif attention == "flash_attention_2" and not flash_ok:
        raise ParamError(f"attention=flash_attention_2 cannot run here: {why_not_flash(cuda, sixteen)}. "
                         "Use attention=sdpa.")
    else:
        chosen.attention = attention

    packing = getattr(p, "packing", "off")
    if packing == "auto":  # padding-free rows pay off where a varlen kernel attends to each record alone
        chosen.packing = packs and chosen.attention == "flash_attention_2"
        if chosen.packing:
            notes.append("Packing on: records share rows padding-free, flash-attention attending to each alone.")
        elif packs:
            notes.append("Packing off: each row holds one record (" + (
                "CPU" if not cuda else "with SDPA a padding-free batch attends as one long masked row; "
                "flash-attention packs it cheaply") + "; set packing=on to pack).")
    else:
        chosen.packing = packs and packing == "on"

    liger = getattr(p, "liger", "off")
    liger_ok = cuda and installed("liger_kernel")
    if liger == "auto":
        chosen.liger = liger_ok
        notes.append("Liger kernels on (RMSNorm, RoPE, SwiGLU)." if liger_ok else
                     "Liger kernels off (" + ("the package liger-kernel is not installed" if cuda else
                                              "they need CUDA") + ").")
    elif liger == "on" and not liger_ok:
        raise ParamError("liger=on needs a CUDA GPU and the liger-kernel package "
                         f"({'not installed: pip install liger-kernel' if cuda else 'this run is on the CPU'}). "
                         "Use liger=off.")
    else:
        chosen.liger = liger == "on"
    if chosen.fused_adamw:
        notes.append("Optimiser: torch's fused AdamW (CUDA).")
    if chosen.compile:
        notes.append("torch.compile on: the first steps include the compilation.")

    for name, value in (("packing", "on" if chosen.packing else "off"), ("attention", chosen.attention),
                        ("liger", "on" if chosen.liger else "off")):
        if hasattr(p, name):
            setattr(p, name, value)
            spec.params[name] = value
    spec.notes.extend(n for n in notes if n not in spec.notes)
    return chosen


def flash_runs(device: str, precision: str) -> bool:
    """Whether flash-attention 2 can run here: installed, an Ampere or newer GPU, 16-bit weights."""
    return device == "cuda" and precision in ("bf16", "fp16") and installed("flash_attn") and \
        gpu_capability() >= FLASH_MIN_CAPABILITY


def packs(p: Any, device: str, precision: str) -> bool:
    """Whether SFT with params `p` packs its rows on this device, as `resolve` decides it (for the estimate,
    which sizes a packed step by max_length-long rows)."""
    packing = getattr(p, "packing", "off")
    if packing != "auto":
        return packing == "on"
    attention = getattr(p, "attention", "auto")
    return attention == "flash_attention_2" or (attention == "auto" and flash_runs(device, precision))


def why_not_flash(cuda: bool, sixteen: bool) -> str:
    if not cuda:
        return "flash-attention needs a CUDA GPU"
    if not installed("flash_attn"):
        return "the flash-attn package is not installed"
    if not sixteen:
        return "flash-attention needs bf16 or fp16 weights"
    major, minor = gpu_capability()
    return f"flash-attention 2 needs an Ampere or newer GPU (compute capability 8.0), this one is {major}.{minor}"
