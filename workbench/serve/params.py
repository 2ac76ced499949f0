"""How the playground asks a model to answer: described once for the CLI's `--set`, the screen and the server."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from workbench.params import build, param


@dataclass
class ChatParams:
    system: str = param("", "System prompt: the first turn of every conversation (empty: none; a model's "
                            "chat template may add its own).", group="chat")
    temperature: float = param(0.7, "Sampling temperature; 0 always takes the most likely token (greedy).",
                               min=0.0, max=5.0, group="chat")
    top_p: float = param(0.95, "Nucleus sampling: keep the smallest set of tokens holding this probability.",
                         min=0.01, max=1.0, group="chat")
    max_new_tokens: int = param(256, "Longest answer, in tokens.", min=1, max=8192, group="chat")
    seed: int = param(0, "Seed of the sampling: the same seed, prompt and settings give the same answer.",
                      min=0, max=2**32 - 1, group="chat")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def chat_params(values: dict[str, Any] | None = None) -> ChatParams:
    """Defaults overridden by `values` (strings from `--set` or a form, or typed values); ParamError names a bad one."""
    return build(ChatParams, values)


def with_system(messages: list[dict[str, str]], system: str) -> list[dict[str, str]]:
    """The conversation as the model reads it: the system prompt first, when there is one."""
    turns = [m for m in messages if m.get("role") != "system"] if system.strip() else list(messages)
    return ([{"role": "system", "content": system}] if system.strip() else []) + turns
