"""The reward library: rule-based rewards with TRL's reward-function signature.

Each reward reads the completions (text, or message lists for conversational prompts), the
dataset columns it needs and its options (keyword arguments named as in `OPTIONS`, which the
method forms show with their help), and returns one score in [0, 1] per completion, or None
where it cannot judge one. Where a reward looks for "the answer", that is the text inside
`<answer>...</answer>` when present, else the text after the last `</think>`, else the whole
completion.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

TRL_KEYS = {"trainer_state", "log_extra", "log_metric", "completion_ids", "environments", "record_index"}
NUMBER = re.compile(r"-?(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?")
FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)


class RewardError(ValueError):
    """A reward set up wrongly (a missing column, a bad pattern): the message says what to fix."""


@dataclass(frozen=True)
class Option:
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None


OPTIONS: dict[str, Option] = {
    "format_pattern": Option(r"\s*<think>.+?</think>\s*\S.*",
                             "format: a regex the whole completion must match (default: <think>...</think> "
                             "then an answer)."),
    "answer_column": Option("answer", "exact, numeric: the dataset column holding the expected answer."),
    "numeric_tolerance": Option(1e-6, "numeric: largest accepted |last number - expected|.", min=0),
    "regex": Option("", "regex: a pattern the completion must contain (Python re, dot matches newlines)."),
    "json_fields": Option("", "json: comma-separated fields the JSON object must have (empty: any valid JSON)."),
    "xml_elements": Option("", "xml: comma-separated elements the well-formed XML must contain "
                               "(empty: well-formed is enough)."),
    "length_min": Option(0, "length: shortest length scored 1; shorter scores length / length_min.", min=0),
    "length_max": Option(400, "length: longest length scored 1 (0: no limit); longer falls linearly "
                              "to 0 at twice this.", min=0),
    "length_unit": Option("chars", "length: count characters or tokens.", choices=("chars", "tokens")),
    "tests_column": Option("tests", "code: the dataset column of unit tests (code with asserts, or a list "
                                    "of such snippets: the score is then the share that pass)."),
    "code_timeout": Option(5.0, "code: seconds a completion's code and tests may run before they score 0.",
                           min=0.1, max=600),
    "code_memory_mb": Option(512, "code: memory limit of the sandboxed process in MiB.", min=64, max=65536),
}
OPTION_DEFAULTS: dict[str, Any] = {name: o.default for name, o in OPTIONS.items()}


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or the contents of a message list joined."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, list):
        parts = []
        for message in completion:
            content = message.get("content", "") if isinstance(message, dict) else message
            if isinstance(content, list):  # content parts: keep the text ones
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            parts.append(str(content or ""))
        return "\n".join(parts)
    return "" if completion is None else str(completion)


def answer_part(text: str) -> str:
    """The answer of a completion: inside <answer> tags, else after the last </think>, else all of it."""
    tagged = re.findall(r"<answer>(.*?)</answer>", text, re.DOTALL)
    if tagged:
        return tagged[-1].strip()
    if "</think>" in text:
        return text.rsplit("</think>", 1)[1].strip()
    return text.strip()


def column(name: str, reward: str, option: str, kwargs: dict[str, Any], n: int) -> list:
    """The dataset column `name`, one value per completion, or a RewardError saying what is there."""
    values = kwargs.get(name)
    if not isinstance(values, list) or len(values) != n:
        have = sorted(k for k, v in kwargs.items() if isinstance(v, list) and k not in TRL_KEYS)
        raise RewardError(f"The '{reward}' reward reads the dataset column '{name}' (option {option}), "
                          f"which the records do not have; their columns: {', '.join(have) or 'none'}.")
    return values


def compiled(pattern: str, reward: str, option: str) -> re.Pattern:
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error as exc:
        raise RewardError(f"The '{reward}' reward's {option} '{pattern}' is not a valid regex: {exc}.") from None


def names(listing: str) -> list[str]:
    return [n.strip() for n in listing.split(",") if n.strip()]


# --- the rewards -----------------------------------------------------------------------------


def format_reward(completions: list, format_pattern: str = OPTION_DEFAULTS["format_pattern"],
                  **kwargs: Any) -> list[float]:
    """1 when the whole completion matches `format_pattern` (by default: reasoning in
    <think>...</think>, then a non-empty answer), else 0."""
    pattern = compiled(format_pattern, "format", "format_pattern")
    return [1.0 if pattern.fullmatch(completion_text(c)) else 0.0 for c in completions]


def normalised(text: Any) -> str:
    return " ".join(str(text).split()).casefold()


def exact_answer(completions: list, answer_column: str = "answer", **kwargs: Any) -> list[float]:
    """1 when the answer equals the `answer_column` value, ignoring case and runs of whitespace."""
    expected = column(answer_column, "exact", "answer_column", kwargs, len(completions))
    return [1.0 if normalised(answer_part(completion_text(c))) == normalised(e) else 0.0
            for c, e in zip(completions, expected)]


def last_number(text: Any) -> float | None:
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    found = NUMBER.findall(str(text))
    return float(found[-1].replace(",", "")) if found else None


def numeric_answer(completions: list, answer_column: str = "answer", numeric_tolerance: float = 1e-6,
                   **kwargs: Any) -> list[float | None]:
    """1 when the last number of the answer is within `numeric_tolerance` of the number in the
    `answer_column` value (its last number, e.g. "#### 42" gives 42), else 0; None when the
    expected value holds no number."""
    expected = column(answer_column, "numeric", "answer_column", kwargs, len(completions))
    scores: list[float | None] = []
    for c, e in zip(completions, expected):
        target, got = last_number(e), last_number(answer_part(completion_text(c)))
        if target is None:
            scores.append(None)
        else:
            scores.append(1.0 if got is not None and abs(got - target) <= numeric_tolerance else 0.0)
    return scores


def regex_reward(completions: list, regex: str = "", **kwargs: Any) -> list[float]:
    """1 when the completion contains a match of `regex`, else 0."""
    if not regex:
        raise RewardError("The 'regex' reward needs a pattern: set the option regex (e.g. regex=^Answer: ).")
    pattern = compiled(regex, "regex", "regex")
    return [1.0 if pattern.search(completion_text(c)) else 0.0 for c in completions]


def json_candidate(text: str) -> Any:
    """The JSON value of a completion: a ```json block, the answer, or its outermost {...}; raises if none."""
    fences = [body for lang, body in FENCE.findall(text) if lang.lower() in ("json", "")]
    for candidate in [*fences, answer_part(text), text]:
        try:
            return json.loads(candidate)
        except ValueError:
            pass
    start, end = text.find("{"), text.rfind("}")
    return json.loads(text[start:end + 1] if 0 <= start < end else text)


def json_reward(completions: list, json_fields: str = "", **kwargs: Any) -> list[float]:
    """0 when the completion holds no valid JSON; else the share of `json_fields` the object has
    (1 when no field is required)."""
    required = names(json_fields)
    scores = []
    for c in completions:
        try:
            value = json_candidate(completion_text(c))
        except ValueError:
            scores.append(0.0)
            continue
        if not required:
            scores.append(1.0)
        elif isinstance(value, dict):
            scores.append(sum(f in value for f in required) / len(required))
        else:
            scores.append(0.0)
    return scores


def xml_reward(completions: list, xml_elements: str = "", **kwargs: Any) -> list[float]:
    """0 when the completion is not well-formed XML (text between elements is allowed); else the
    share of `xml_elements` present (1 when none is required)."""
    required = names(xml_elements)
    scores = []
    for c in completions:
        try:
            root = ET.fromstring(f"<completion>{completion_text(c)}</completion>")
        except ET.ParseError:
            scores.append(0.0)
            continue
        found = {e.tag for e in root.iter()}
        scores.append(sum(r in found for r in required) / len(required) if required else 1.0)
    return scores


def length_score(n: int, low: int, high: int) -> float:
    """1 inside [low, high]; below, n / low; above, falling linearly to 0 at 2 * high."""
    if n < low:
        return n / low
    if high and n > high:
        return max(0.0, 1.0 - (n - high) / high)
    return 1.0


def length_reward(completions: list, length_min: int = 0, length_max: int = 400, length_unit: str = "chars",
                  tokenizer: Any = None, **kwargs: Any) -> list[float]:
    """1 when the completion's length (characters or tokens) is within [length_min, length_max],
    decreasing outside (see `length_score`)."""
    if length_max and length_min > length_max:
        raise RewardError(f"The 'length' reward's length_min ({length_min}) is above length_max ({length_max}).")
    if length_unit == "chars":
        sizes = [len(completion_text(c)) for c in completions]
    elif length_unit == "tokens":
        ids = kwargs.get("completion_ids")
        if isinstance(ids, list) and len(ids) == len(completions):
            sizes = [len(i) for i in ids]
        elif tokenizer is not None:
            sizes = [len(tokenizer(completion_text(c), add_special_tokens=False)["input_ids"]) for c in completions]
        else:
            raise RewardError("The 'length' reward counts tokens only with a tokenizer; use length_unit=chars.")
    else:
        raise RewardError(f"The 'length' reward's length_unit is '{length_unit}'; use chars or tokens.")
    return [length_score(n, length_min, length_max) for n in sizes]


def code_block(text: str) -> str:
    """The code of a completion: its first ```python (or unlabelled) block, else its answer."""
    blocks = FENCE.findall(text)
    for lang, body in blocks:
        if lang.lower() in ("python", "py", "python3", ""):
            return body
    return blocks[0][1] if blocks else answer_part(text)


def code_reward(completions: list, tests_column: str = "tests", code_timeout: float = 5.0,
                code_memory_mb: int = 512, **kwargs: Any) -> list[float]:
    """1 when the completion's code passes the unit tests of `tests_column`, run in the sandbox
    (a separate, limited process with no network; see `workbench.rewards.sandbox`); with a list
    of tests, the share that pass. A timeout, a crash or a limit hit scores 0."""
    from workbench.rewards.sandbox import run_tests

    tests = column(tests_column, "code", "tests_column", kwargs, len(completions))
    codes = [code_block(completion_text(c)) for c in completions]
    with ThreadPoolExecutor(max_workers=min(4, max(1, len(codes)))) as pool:
        outcomes = pool.map(lambda pair: run_tests(pair[0], pair[1], code_timeout, code_memory_mb),
                            zip(codes, tests))
        return [o.score for o in outcomes]


LIBRARY: dict[str, Callable[..., list]] = {
    "format": format_reward,
    "exact": exact_answer,
    "numeric": numeric_answer,
    "regex": regex_reward,
    "json": json_reward,
    "xml": xml_reward,
    "length": length_reward,
    "code": code_reward,
}
