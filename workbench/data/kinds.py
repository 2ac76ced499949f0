"""Record kinds: detect which one a record is, check it, and normalise it.

Canonical forms stored in a project (methods read these and nothing else):
- chat: {"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}, ends with assistant
- prompt_completion: {"prompt": str, "completion": str}, or both as message lists
- preference: {"prompt": str|[messages], "chosen": str|[messages], "rejected": str|[messages]}
- ranked: {"prompt": str|[messages], "completions": [str, ...], "ranking": [i, ...]} best first,
  plus "ties": [[i, j], ...] when some completions scored the same
- unpaired_label: {"prompt": str|[messages], "completion": str|[messages], "label": bool}
- text: {"text": str}
- prompt: {"prompt": str|[messages], ...}: a prompt alone, for methods that generate their own answers
  (GRPO, PPO, sampling); its other fields (answer, tests, ...) are kept for rewards and filters
- labelled: {"text": str, "label": str|int}: a text and its class, for a classification head
- pair: {"anchor": str, "positive": str} (+ "negative": str): texts that match, for an embedding model
- scored_pair: {"a": str, "b": str, "score": float}: two texts and how alike they are (see `similarity`)

ShareGPT ("conversations" with from/value) and Alpaca (instruction, input, output) become chat.
"""

from __future__ import annotations

import math
from typing import Any

from workbench.data.checks import ROLES, RecordProblem, chat_messages, message_list, text, text_or_messages
from workbench.data.feedback import preference, ranked, unpaired_label
from workbench.data.similarity import is_pair, is_scored_pair, pair, scored_pair

__all__ = ["KINDS", "ROLES", "RecordProblem", "detect", "normalise"]

KINDS = ("chat", "prompt_completion", "preference", "ranked", "unpaired_label", "text", "prompt", "labelled", "pair",
         "scored_pair")
EXPECTED = ("expected one of: messages (chat), conversations (ShareGPT), instruction + output (Alpaca), "
            "prompt + completion, prompt + chosen + rejected, or chosen + rejected dialogues (preference), "
            "prompt + completions + ranking or scores, prompt + responses (ranked), "
            "prompt + completion + label (unpaired label), text, text + label (labelled), "
            "prompt alone with any other fields (prompt), anchor + positive [+ negative] (pair), "
            "a + b + score or sentence1 + sentence2 + score (scored pair)")
MAX_DEPTH = 64  # lists or objects inside each other in one field; a record of any kind needs a few
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "model": "assistant", "bot": "assistant", "system": "system"}


def detect(record: dict[str, Any]) -> str:
    keys = {k for k, v in record.items() if v is not None}
    if keys & {"messages", "conversations"} or "instruction" in keys:
        return "chat"
    if {"chosen", "rejected"} <= keys:
        return "preference"
    if "prompt" in keys and keys & {"completions", "responses"}:
        return "ranked"
    if {"prompt", "completion", "label"} <= keys:
        return "unpaired_label"
    if "prompt" not in keys and is_pair(keys):
        return "pair"
    if "prompt" not in keys and is_scored_pair(keys):
        return "scored_pair"
    if {"prompt", "completion"} <= keys or ("prompt" in keys and "completion" in record):
        return "prompt_completion"  # an empty completion is reported by the normaliser
    if "text" in keys and len(keys) == 1:
        return "text"
    if keys == {"text", "label"}:
        return "labelled"
    if "prompt" in keys and not set(record) & {"completion", "chosen", "rejected", "completions", "responses"}:
        return "prompt"
    found = ", ".join(sorted(keys)) or "no fields"
    raise RecordProblem(f"unknown record shape (fields: {found}); {EXPECTED}")


def normalise(record: dict[str, Any], kind: str) -> dict[str, Any]:
    """The record in its kind's canonical form: plain JSON that any reader takes (no NaN or Infinity,
    no field nested deeper than MAX_DEPTH)."""
    out = _canonical(record, kind)
    for key, value in out.items():
        why = _unstorable(value)
        if why:
            raise RecordProblem(f"field '{key}' {why}")
    return out


def _unstorable(value: Any) -> str:
    """Why `value` cannot be stored as plain JSON ("" when it can); walked without recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return "holds NaN or Infinity, which a JSON file cannot store"
        if isinstance(item, (list, dict)):
            if depth > MAX_DEPTH:
                return f"is nested more than {MAX_DEPTH} lists or objects deep"
            stack.extend((v, depth + 1) for v in (item if isinstance(item, list) else item.values()))
    return ""


def _canonical(record: dict[str, Any], kind: str) -> dict[str, Any]:
    if kind == "chat":
        return {"messages": _chat(record)}
    if kind == "prompt_completion":
        return _prompt_completion(record)
    if kind == "preference":
        return preference(record)
    if kind == "ranked":
        return ranked(record)
    if kind == "unpaired_label":
        return unpaired_label(record)
    if kind == "text":
        return {"text": text(record, "text")}
    if kind == "prompt":
        return {**{k: v for k, v in record.items() if v is not None}, "prompt": text_or_messages(record, "prompt")}
    if kind == "labelled":
        return {"text": text(record, "text"), "label": _label(record)}
    if kind == "pair":
        return pair(record)
    if kind == "scored_pair":
        return scored_pair(record)
    raise RecordProblem(f"unsupported kind '{kind}' (known kinds: {', '.join(KINDS)})")


def _chat(record: dict[str, Any]) -> list[dict[str, str]]:
    if record.get("messages") is not None:
        return chat_messages(record["messages"])
    if record.get("conversations") is not None:
        return chat_messages(_sharegpt(record["conversations"]))
    if record.get("instruction") is not None:
        return chat_messages(_alpaca(record))
    raise RecordProblem("missing field 'messages' (or 'conversations', or 'instruction' + 'output')")


def _sharegpt(turns: Any) -> Any:
    if not isinstance(turns, list):
        return turns  # chat_messages says what is wrong with it
    out = []
    for i, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict) or "role" in turn:
            out.append(turn)
            continue
        speaker = turn.get("from")
        if speaker not in SHAREGPT_ROLES:
            raise RecordProblem(f"turn {i} is from {speaker!r}; expected one of {', '.join(SHAREGPT_ROLES)}")
        out.append({"role": SHAREGPT_ROLES[speaker], "content": turn.get("value")})
    return out


def _alpaca(record: dict[str, Any]) -> list[dict[str, Any]]:
    instruction = text(record, "instruction")
    answer = text(record, "output")
    extra = record.get("input")
    if extra is not None and not isinstance(extra, str):
        raise RecordProblem(f"field 'input' should be text, found {type(extra).__name__}")
    user = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    if record.get("system"):
        messages.insert(0, {"role": "system", "content": text(record, "system")})
    return messages


def _prompt_completion(record: dict[str, Any]) -> dict[str, Any]:
    prompt, completion = record.get("prompt"), record.get("completion")
    if isinstance(prompt, list) or isinstance(completion, list):
        prompt = message_list(prompt, "prompt")
        completion = message_list(completion, "completion")
        if completion[-1]["role"] != "assistant":
            raise RecordProblem("the completion should end with an assistant message")
        return {"prompt": prompt, "completion": completion}
    return {"prompt": text(record, "prompt"), "completion": text(record, "completion")}


def _label(record: dict[str, Any]) -> str | int:
    label = record.get("label")
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        raise RecordProblem(f"field 'label' should be a class name or number, found {type(label).__name__}")
    if isinstance(label, str) and not label.strip():
        raise RecordProblem("field 'label' is empty")
    return label
