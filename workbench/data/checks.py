"""Checks shared by the record kinds: a text field, a list of messages, a whole conversation."""

from __future__ import annotations

from typing import Any

ROLES = ("system", "user", "assistant")


class RecordProblem(ValueError):
    """Why one record cannot be used, in words a person understands."""


def text(record: dict[str, Any], key: str) -> str:
    if record.get(key) is None:
        raise RecordProblem(f"missing field '{key}'")
    value = record[key]
    if not isinstance(value, str):
        raise RecordProblem(f"field '{key}' should be text, found {type(value).__name__}")
    if not value.strip():
        raise RecordProblem(f"field '{key}' is empty")
    return value


def message_list(messages: Any, field: str = "messages") -> list[dict[str, str]]:
    """Each message has a known role and some content; the order is not checked here."""
    if messages is None:
        raise RecordProblem(f"missing field '{field}'")
    if not isinstance(messages, list) or not messages:
        raise RecordProblem(f"'{field}' should be a non-empty list of messages")
    out = []
    for i, message in enumerate(messages, start=1):
        if not isinstance(message, dict):
            raise RecordProblem(f"{_where(field, i)} is not an object")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise RecordProblem(f"{_where(field, i)} has role {role!r}; expected one of {', '.join(ROLES)}")
        if not isinstance(content, str) or not content.strip():
            raise RecordProblem(f"{_where(field, i)} ({role}) has empty or missing content")
        out.append({"role": role, "content": content})
    return out


def chat_messages(messages: Any) -> list[dict[str, str]]:
    """A conversation to learn from: optional system, then user/assistant turns ending with assistant."""
    out = message_list(messages)
    for i, message in enumerate(out, start=1):
        if message["role"] == "system" and i != 1:
            raise RecordProblem(f"message {i}: a system message may only come first")
    turns = [m["role"] for m in out if m["role"] != "system"]
    if not turns or turns[0] != "user":
        raise RecordProblem("the conversation should start with a user message (after an optional system one)")
    for a, b in zip(turns, turns[1:]):
        if a == b:
            raise RecordProblem(f"two {a} messages in a row; roles should alternate user/assistant")
    if turns[-1] != "assistant":
        raise RecordProblem("the conversation should end with an assistant message (the answer to learn)")
    return out


def text_or_messages(record: dict[str, Any], key: str) -> str | list[dict[str, str]]:
    value = record.get(key)
    if isinstance(value, list):
        return message_list(value, key)
    return text(record, key)


def _where(field: str, i: int) -> str:
    return f"message {i}" if field == "messages" else f"'{field}' message {i}"
