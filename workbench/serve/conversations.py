"""What the playground keeps: its conversations, and the preference pairs and examples a person makes of them.

A conversation is one JSON file in `<project>/playground/conversations/`, rewritten after each answer:
{id, created, updated, params (system prompt, sampling), panes: [{model, label, messages}]}.
"Prefer left/right" appends a preference record (prompt: the conversation up to the last user turn,
system prompt first; chosen and rejected: the two last answers) to the `playground-pairs` dataset, which
DPO and the reward model train on; "save as SFT example" appends the conversation with its (edited) last
answer to the `playground-sft` chat dataset. Light: no torch.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from workbench import locations
from workbench.data.append import append_record
from workbench.files import write_atomic
from workbench.serve.params import ChatParams, with_system

CONVERSATIONS = "conversations"
PAIRS_DATASET = "playground-pairs"
SFT_DATASET = "playground-sft"
SOURCE = "playground"


def new_id() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def conversation_path(project: str, conversation_id: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9._-]+", conversation_id):
        raise ValueError(f"'{conversation_id}' is not a conversation id")
    return locations.playground_dir(project) / CONVERSATIONS / f"{conversation_id}.json"


def save(project: str, conversation_id: str, params: ChatParams, panes: list[dict[str, Any]],
         created: float | None = None) -> Path:
    """Write the conversation (every pane's model and turns) whole; returns its file."""
    path = conversation_path(project, conversation_id)
    data = {"id": conversation_id, "created": created or time.time(), "updated": time.time(),
            "params": params.to_dict(), "panes": panes}
    write_atomic(path, json.dumps(data, ensure_ascii=False, indent=1) + "\n")
    return path


def load(project: str, conversation_id: str) -> dict[str, Any]:
    return json.loads(conversation_path(project, conversation_id).read_text(encoding="utf-8"))


def list_ids(project: str) -> list[str]:
    """The saved conversations, newest first."""
    folder = locations.playground_dir(project) / CONVERSATIONS
    return sorted((p.stem for p in folder.glob("*.json")), reverse=True) if folder.exists() else []


def last_answer(messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], str]:
    """(the turns before the last answer, the last answer); ValueError when the last turn is no answer."""
    if not messages or messages[-1]["role"] != "assistant" or not messages[-1]["content"].strip():
        raise ValueError("There is no answer to keep yet: send a message first.")
    return messages[:-1], messages[-1]["content"]


def save_pair(project: str, system: str, chosen: list[dict[str, str]], rejected: list[dict[str, str]]) -> int:
    """Append (prompt, chosen, rejected) from two panes' conversations; the pairs now in the dataset.
    The prompt is the chosen conversation's; the rejected answer must answer the same last user turn."""
    prompt, best = last_answer(chosen)
    other_prompt, worse = last_answer(rejected)
    if not prompt or not other_prompt or prompt[-1] != other_prompt[-1]:
        raise ValueError("The two answers do not answer the same message.")
    if best.strip() == worse.strip():
        raise ValueError("Both answers are the same: a pair needs two different answers.")
    record = {"prompt": with_system(prompt, system), "chosen": best, "rejected": worse}
    return append_record(project, PAIRS_DATASET, "preference", record, SOURCE)


def save_example(project: str, system: str, messages: list[dict[str, str]], answer: str) -> int:
    """Append the conversation, `answer` (edited by the person) as its last turn; the examples now in the dataset."""
    prompt, _ = last_answer(messages)
    if not answer.strip():
        raise ValueError("The answer is empty.")
    record = {"messages": with_system(prompt, system) + [{"role": "assistant", "content": answer}]}
    return append_record(project, SFT_DATASET, "chat", record, SOURCE)
