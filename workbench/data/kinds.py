"""Record kinds: detect which one a record is, check it, and normalise it.

Canonical forms stored in a project:
- chat: {"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}
- prompt_completion: {"prompt": str, "completion": str}
"""

from __future__ import annotations

from typing import Any

ROLES = ("system", "user", "assistant")


class RecordProblem(ValueError):
    """Why one record cannot be used, in words a person understands."""


def detect(record: dict[str, Any]) -> str:
    if "messages" in record:
        return "chat"
    if "prompt" in record and "completion" in record:
        return "prompt_completion"
    keys = ", ".join(sorted(record)) or "no fields"
    raise RecordProblem(f"unknown record shape (fields: {keys}); expected 'messages' or 'prompt' + 'completion'")


def normalise(record: dict[str, Any], kind: str) -> dict[str, Any]:
    if kind == "chat":
        return {"messages": _chat(record.get("messages"))}
    if kind == "prompt_completion":
        return {"prompt": _text(record, "prompt"), "completion": _text(record, "completion")}
    raise RecordProblem(f"unsupported kind '{kind}'")


def _text(record: dict[str, Any], key: str) -> str:
    if key not in record:
        raise RecordProblem(f"missing field '{key}'")
    value = record[key]
    if not isinstance(value, str):
        raise RecordProblem(f"field '{key}' should be text, found {type(value).__name__}")
    if not value.strip():
        raise RecordProblem(f"field '{key}' is empty")
    return value


def _chat(messages: Any) -> list[dict[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise RecordProblem("'messages' should be a non-empty list")
    out = []
    for i, message in enumerate(messages, start=1):
        if not isinstance(message, dict):
            raise RecordProblem(f"message {i} is not an object")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise RecordProblem(f"message {i} has role {role!r}; expected one of {', '.join(ROLES)}")
        if not isinstance(content, str) or not content.strip():
            raise RecordProblem(f"message {i} ({role}) has empty or missing content")
        if role == "system" and i != 1:
            raise RecordProblem(f"message {i}: a system message may only come first")
        out.append({"role": role, "content": content})
    turns = [m["role"] for m in out if m["role"] != "system"]
    if not turns or turns[0] != "user":
        raise RecordProblem("the conversation should start with a user message (after an optional system one)")
    for a, b in zip(turns, turns[1:]):
        if a == b:
            raise RecordProblem(f"two {a} messages in a row; roles should alternate user/assistant")
    if turns[-1] != "assistant":
        raise RecordProblem("the conversation should end with an assistant message (the answer to learn)")
    return out
