"""The feedback kinds: preference pairs, ranked completions, and single answers labelled good or bad."""

from __future__ import annotations

import math
import os
import re
from typing import Any

from workbench.data.checks import RecordProblem, message_list, text_or_messages

TRUE_LABELS = {"good", "true", "yes", "1"}
FALSE_LABELS = {"bad", "false", "no", "0"}


def preference(record: dict[str, Any]) -> dict[str, Any]:
    chosen, rejected = record.get("chosen"), record.get("rejected")
    if record.get("prompt") is None and isinstance(chosen, list) and isinstance(rejected, list):
        prompt, chosen, rejected = _split_implicit_prompt(message_list(chosen, "chosen"),
                                                          message_list(rejected, "rejected"))
    elif record.get("prompt") is None and isinstance(chosen, str) and isinstance(rejected, str):
        prompt, chosen, rejected = _split_dialogue(chosen, rejected)
    else:
        prompt = text_or_messages(record, "prompt")
        chosen, rejected = text_or_messages(record, "chosen"), text_or_messages(record, "rejected")
    if chosen == rejected:
        raise RecordProblem("chosen and rejected are the same; a preference pair needs two different answers")
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def _split_implicit_prompt(chosen: list, rejected: list) -> tuple[list, list, list]:
    """Conversations that share their first messages: those messages are the prompt."""
    if chosen == rejected:
        raise RecordProblem("chosen and rejected are the same; a preference pair needs two different answers")
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    if shared == 0:
        raise RecordProblem("missing field 'prompt' (and chosen and rejected share no leading messages)")
    if shared in (len(chosen), len(rejected)):
        raise RecordProblem("chosen and rejected should each go on after the messages they share")
    return chosen[:shared], chosen[shared:], rejected[shared:]


HH_ASSISTANT = "\n\nAssistant:"
HH_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):[ \t]?")
HH_LATER_TURN = re.compile(r"\n\n(Human|Assistant):")
HH_ROLES = {"Human": "user", "Assistant": "assistant"}


def _split_dialogue(chosen: str, rejected: str) -> tuple[list, list, list]:
    """HH-RLHF style pairs: each side is the whole dialogue ("\\n\\nHuman: ...\\n\\nAssistant: ..."); the turns
    up to the last "Assistant:" the two share are the prompt (as messages), what follows each is its answer."""
    if chosen == rejected:
        raise RecordProblem("chosen and rejected are the same; a preference pair needs two different answers")
    shared = os.path.commonprefix([chosen, rejected])
    cut = shared.rfind(HH_ASSISTANT)
    if cut < 0 or not HH_TURN.match(shared):
        raise RecordProblem("missing field 'prompt' (and chosen and rejected are not dialogues that share their "
                            "turns up to an '\\n\\nAssistant:')")
    cut += len(HH_ASSISTANT)
    answers = []
    for name, side in (("chosen", chosen), ("rejected", rejected)):
        answer = side[cut:].strip()
        if not answer:
            raise RecordProblem(f"the {name} answer after the last 'Assistant:' is empty")
        if HH_LATER_TURN.search(side, cut):
            raise RecordProblem("chosen and rejected differ before their last assistant turn; only the last turn "
                                "may differ")
        answers.append([{"role": "assistant", "content": answer}])
    parts = HH_TURN.split(shared[:cut])  # ["", role, text, role, text, ..., "Assistant", ""]
    if parts[0].strip():
        raise RecordProblem("the dialogue has text before its first 'Human:' turn")
    messages = [{"role": HH_ROLES[role], "content": content.strip()}
                for role, content in zip(parts[1::2], parts[2::2])][:-1]  # the last is the answers' empty turn
    turns = message_list(messages, "prompt")
    roles = [m["role"] for m in turns]
    if roles[0] != "user" or roles[-1] != "user" or any(a == b for a, b in zip(roles, roles[1:])):
        raise RecordProblem("the dialogue's turns should alternate Human/Assistant, starting and ending with Human")
    return turns, answers[0], answers[1]


def ranked(record: dict[str, Any]) -> dict[str, Any]:
    prompt = text_or_messages(record, "prompt")
    if record.get("completions") is None and record.get("responses") is not None:
        completions, ranks = _responses(record["responses"])
        ranking, ties = _order(ranks, best_is_highest=False)
    else:
        completions = _completions(record.get("completions"))
        if record.get("ranking") is not None:
            ranking = _ranking(record["ranking"], len(completions))
            ties = _ties(record.get("ties"), len(completions))
        elif record.get("scores") is not None:
            ranking, ties = _order(_scores(record["scores"], len(completions)), best_is_highest=True)
        else:
            raise RecordProblem("missing field 'ranking' (completion indices, best first) or 'scores'")
    out = {"prompt": prompt, "completions": completions, "ranking": ranking}
    if ties:
        out["ties"] = ties
    cut = _cut(record.get("cut"), len(completions))
    if cut:
        out["cut"] = cut
    return out


def _completions(value: Any) -> list[str]:
    if value is None:
        raise RecordProblem("missing field 'completions'")
    if not isinstance(value, list) or len(value) < 2:
        raise RecordProblem("'completions' should be a list of at least 2 answers")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise RecordProblem(f"completion {i} is empty or not text")
    return list(value)


def _responses(value: Any) -> tuple[list[str], list[float]]:
    if not isinstance(value, list) or len(value) < 2:
        raise RecordProblem("'responses' should be a list of at least 2 answers")
    completions, ranks = [], []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise RecordProblem(f"response {i} is not an object")
        answer = item.get("text", item.get("content"))
        if not isinstance(answer, str) or not answer.strip():
            raise RecordProblem(f"response {i} has empty or missing 'text'")
        if not _is_number(item.get("rank")):
            raise RecordProblem(f"response {i} has no numeric 'rank' (1 = best)")
        completions.append(answer)
        ranks.append(item["rank"])
    return completions, ranks


def _ranking(value: Any, n: int) -> list[int]:
    if (not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in value)
            or sorted(value) != list(range(n))):
        raise RecordProblem(f"'ranking' should list each completion index 0..{n - 1} once, best first")
    return list(value)


def _ties(value: Any, n: int) -> list[list[int]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(
            isinstance(group, list) and len(group) >= 2 and all(isinstance(i, int) and 0 <= i < n for i in group)
            for group in value):
        raise RecordProblem("'ties' should be groups of at least 2 completion indices")
    return [list(group) for group in value]


def _cut(value: Any, n: int) -> list[int]:
    """The completions the token limit ended before the model did (a sampled answer too short to be whole)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n
                                              for i in value):
        raise RecordProblem(f"'cut' should list completion indices 0..{n - 1} (the answers the token limit cut)")
    return sorted(set(value))


def _scores(value: Any, n: int) -> list[float]:
    if not isinstance(value, list) or len(value) != n or not all(_is_number(s) for s in value):
        raise RecordProblem(f"'scores' should hold one number per completion ({n})")
    return list(value)


def _order(values: list[float], best_is_highest: bool) -> tuple[list[int], list[list[int]]]:
    """Indices best first; completions with equal values are listed together as a tie."""
    ranking = sorted(range(len(values)), key=lambda i: -values[i] if best_is_highest else values[i])
    groups: dict[float, list[int]] = {}
    for i in ranking:
        groups.setdefault(values[i], []).append(i)
    return ranking, [group for group in groups.values() if len(group) > 1]


def _is_number(value: Any) -> bool:
    """An int or a finite float (a NaN score would rank at random)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool)


def unpaired_label(record: dict[str, Any]) -> dict[str, Any]:
    return {"prompt": text_or_messages(record, "prompt"), "completion": text_or_messages(record, "completion"),
            "label": _label(record.get("label"))}


def _label(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if _is_number(value) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE_LABELS | FALSE_LABELS:
        return value.strip().lower() in TRUE_LABELS
    if value is None:
        raise RecordProblem("missing field 'label'")
    raise RecordProblem(f"'label' should be true/false, 1/0 or good/bad; found {value!r}")


def ordered_pairs(groups: list[list[int]]) -> list[tuple[int, int]]:
    """(better, worse) pairs of groups listed best first: each member beats every member of later groups."""
    pairs = []
    for k, group in enumerate(groups):
        below = [j for later in groups[k + 1:] for j in later]
        pairs.extend((i, j) for i in group for j in below)
    return pairs


def ranked_pairs(record: dict[str, Any]) -> list[tuple[int, int]]:
    """The pairs of a canonical `ranked` dataset record (`ranking` best first, `ties` groups)."""
    group_of = {i: k for k, group in enumerate(record.get("ties") or []) for i in group}
    groups: list[list[int]] = []
    last = None
    for i in record["ranking"]:
        key = group_of.get(i)
        if key is not None and key == last:
            groups[-1].append(i)
        else:
            groups.append([i])
        last = key
    return ordered_pairs(groups)
