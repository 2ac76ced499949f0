"""Record -> prompt: what a model is asked, for every method and tool that asks it something.

The rule, by record kind (see `workbench.data.kinds` for the canonical forms):
- chat: the turns before its last assistant turn (messages); a conversation with no
  assistant turn is all prompt;
- prompt_completion, prompt: its `prompt`, text or messages (so are the prompts of
  preference, ranked and unpaired_label records);
- text, labelled: no prompt (`DataError`).

A prompt is text or messages. With `chat=True` (the model has a chat template and the
caller renders through it) a text prompt becomes the single user turn, as TRL's trainers
and our samplers present it to an instruct model.

The rows GRPO, RLOO, PPO and the rewards dry run score are built around it by `prompt_rows`:
the prompt, the record's reference answer as the `answer` column (chat, prompt_completion)
or the record's own other fields (prompt records: answer, tests, ...), and `record_index`.
Light: no imports beyond the data layer.
"""

from __future__ import annotations

from typing import Any

from workbench.data.errors import DataError

Prompt = str | list[dict[str, str]]
NOT_PROMPTS = ("chosen", "rejected", "completions", "text")  # fields of records that are not prompts to answer


def has_prompt(record: dict[str, Any]) -> bool:
    return "messages" in record or "prompt" in record


def as_messages(prompt: Prompt) -> list[dict[str, str]]:
    """A text prompt as the single user turn; a conversation as it is."""
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def prompt_of(record: dict[str, Any], chat: bool = False) -> Prompt:
    """The prompt of `record` by the rule above: text or messages, messages whenever `chat`."""
    if "messages" in record:
        messages = record["messages"]
        last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=len(messages))
        prompt: Prompt = list(messages[:last])
    elif "prompt" in record:
        prompt = record["prompt"]
    else:
        raise DataError(f"A record with fields {', '.join(sorted(record)) or 'none'} has no prompt: prompts come "
                        "from chat, prompt/completion or prompt records.")
    return as_messages(prompt) if chat else prompt


def answer_of(record: dict[str, Any]) -> str | None:
    """The reference answer a record gives its prompt, as text: a chat's last assistant turn, a
    prompt_completion's completion; None for the other kinds."""
    if "messages" in record:
        answers = [m for m in record["messages"] if m.get("role") == "assistant"]
        return answers[-1]["content"] if answers else None
    completion = record.get("completion")
    if isinstance(completion, list):
        return "\n".join(str(m.get("content", "")) for m in completion)
    return completion


def prompt_row(record: dict[str, Any], chat: bool) -> dict[str, Any]:
    """One row for a method that samples its own answers: `prompt` and the columns its rewards read."""
    if not ("messages" in record or "completion" in record or
            ("prompt" in record and not record.keys() & set(NOT_PROMPTS))):
        raise DataError("This method needs prompt, prompt/completion or chat records; found a record with fields "
                        f"{', '.join(sorted(record))}.")
    if "messages" in record or "completion" in record:
        return {"prompt": prompt_of(record, chat), "answer": answer_of(record)}
    return {**record, "prompt": prompt_of(record, chat)}


def prompt_rows(records: list[dict[str, Any]], chat: bool) -> list[dict[str, Any]]:
    """The rows of `records`, numbered (`record_index`, 1-based, for messages), with the same columns each.

    One run renders every prompt one way: when any prompt is a conversation, text prompts
    become a user turn too."""
    rows = [prompt_row(r, chat) for r in records]
    if any(isinstance(r["prompt"], list) for r in rows):
        for r in rows:
            r["prompt"] = as_messages(r["prompt"])
    columns = list(dict.fromkeys(k for r in rows for k in r))
    return [{**{c: r.get(c) for c in columns}, "record_index": i} for i, r in enumerate(rows, start=1)]


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))
