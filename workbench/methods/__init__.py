"""The method registry: what each method is called, the data it needs and its parameters.

This module and the params modules are light (no torch): the UI reads them to build
forms. Each method's `run(spec, job)` lives in a module imported only by the worker.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from workbench.methods.pair_params import DPOParams, RewardParams
from workbench.methods.sft_params import SFTParams


@dataclass(frozen=True)
class Method:
    name: str
    title: str
    summary: str
    data_kinds: tuple[str, ...]
    params: type
    runner: str  # "module:function", imported by the worker only
    kind: str = "train"  # "train": teaches a model; "generate": writes data (samples, rankings, datasets)

    def load_runner(self) -> Callable[..., Any]:
        module, _, func = self.runner.partition(":")
        return getattr(importlib.import_module(module), func)


METHODS: dict[str, Method] = {
    "sft": Method(
        name="sft",
        title="Supervised fine-tuning",
        summary="Learn to answer like the examples (chat, prompt/completion or plain text), with LoRA or on all weights.",
        data_kinds=("chat", "prompt_completion", "text"),
        params=SFTParams,
        runner="workbench.methods.sft:run",
    ),
    "reward": Method(
        name="reward",
        title="Reward model",
        summary="Learn a score that ranks chosen answers above rejected ones (preference or ranked data).",
        data_kinds=("preference", "ranked"),
        params=RewardParams,
        runner="workbench.methods.reward:run",
    ),
    "dpo": Method(
        name="dpo",
        title="Direct preference optimisation",
        summary="Prefer the chosen answers over the rejected ones, staying close to the base (preference or ranked data).",
        data_kinds=("preference", "ranked"),
        params=DPOParams,
        runner="workbench.methods.dpo:run",
    ),
}


def of_kind(kind: str) -> list[Method]:
    return [m for m in METHODS.values() if m.kind == kind]


class UnknownMethod(ValueError):
    pass


def get(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise UnknownMethod(f"Unknown method '{name}'. Available: {', '.join(METHODS)}.") from None
