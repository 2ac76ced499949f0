"""What an evaluation measures: pure functions, each checked against values worked out by hand.

Generation metrics, chosen per task (`choose`), scored per record and averaged over the records:

- `exact_match`: the answer equals the reference answer, spaces at both ends aside;
- `fields`: for references that are JSON objects, `json_valid` (the whole answer is one JSON
  object), `fields.<key>` (the share of records whose answer has the reference's value under that
  key) and `field_accuracy` (all field checks of all records together). The value is read from the
  first JSON object in the answer, so a model that wraps its JSON in prose or a code fence still
  gets the fields it got right (it loses `json_valid`). Values are compared case-sensitively after
  collapsing whitespace; a number equals its text ("1998" == 1998); a list equals its items joined
  by "; "; true, false and null equal only themselves;
- any rule reward of the reward library (`workbench.rewards.library`: numeric, regex, xml, code,
  exact, json, length, format), its mean score over the records it could judge, under
  `rewards.<name>`; its options (regex, answer_column, tests_column, ...) are the reward's own;
- `reward_model`: the mean score a reward-model run gives the answers (`rewards.model` loads it).

Likelihood metrics: `loss` is the mean negative log-likelihood per reference-answer token given
the prompt, `perplexity` its exponential. The forgetting watch is the perplexity of a fixed plain
English text (`english.txt`), and its change from the base model in percent.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from workbench.rewards.library import LIBRARY, NUMBER

EXACT = "exact_match"
FIELDS = "fields"
REWARD_MODEL = "reward_model"
OWN = (EXACT, FIELDS)  # scored here; every other name is a reward of the library
NEEDS_REFERENCE = {EXACT, FIELDS, "exact", "numeric"}  # (exact, numeric: through their answer_column)


class MetricError(ValueError):
    """A metric that cannot be taken on these records; the message says why and what to choose."""


# --- exact match and JSON fields ---------------------------------------------------------------

def parse_json_object(text: str) -> tuple[dict | None, bool]:
    """(the first JSON object in `text` or None, whether the whole text is exactly that object)."""
    stripped = text.strip()
    try:
        whole = json.loads(stripped)
        if isinstance(whole, dict):
            return whole, True
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", stripped):
        try:
            value, _ = decoder.raw_decode(stripped, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value, False
    return None, False


def normalise_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return f"\x00{json.dumps(value)}"  # true/null never equal the text "true"/"null"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, list):
        return "; ".join(normalise_value(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return " ".join(str(value).split())


@dataclass
class Scored:
    """One record's score: the fields are those of the reference when it is a JSON object."""

    exact: bool
    structured: bool  # the reference is a JSON object
    json_valid: bool = False
    fields: dict[str, bool] = field(default_factory=dict)


def score_answer(answer: str, reference: str) -> Scored:
    expected, _ = parse_json_object(reference)
    exact = answer.strip() == reference.strip()
    if expected is None:
        return Scored(exact=exact, structured=False)
    got, whole = parse_json_object(answer)
    got = got or {}
    checks = {key: key in got and normalise_value(got[key]) == normalise_value(value)
              for key, value in expected.items()}
    return Scored(exact=exact, structured=True, json_valid=whole, fields=checks)


def summarize(scores: list[Scored]) -> dict[str, Any]:
    """Rates between 0 and 1 over the records (fields: over the records that have that field)."""
    n = len(scores)
    out: dict[str, Any] = {"records": n, EXACT: rate(sum(s.exact for s in scores), n)}
    structured = [s for s in scores if s.structured]
    if structured:
        out["json_valid"] = rate(sum(s.json_valid for s in structured), len(structured))
        keys = list(dict.fromkeys(k for s in structured for k in s.fields))
        out["fields"] = {k: rate(sum(s.fields[k] for s in structured if k in s.fields),
                                 sum(k in s.fields for s in structured)) for k in keys}
        checks = [ok for s in structured for ok in s.fields.values()]
        out["field_accuracy"] = rate(sum(checks), len(checks))
    return out


def rate(hits: float, total: int) -> float:
    return round(hits / total, 4) if total else 0.0


def mean_score(scores: list[float | None]) -> float | None:
    """The mean of the scores a reward could give (None: it could not judge that record)."""
    judged = [s for s in scores if s is not None]
    return round(sum(judged) / len(judged), 4) if judged else None


# --- likelihood ---------------------------------------------------------------------------------

def perplexity(total_nll: float, tokens: int) -> tuple[float | None, float | None]:
    """(mean loss per token, perplexity) of `total_nll` nats over `tokens` tokens; (None, None) for none."""
    if tokens <= 0:
        return None, None
    loss = total_nll / tokens
    return round(loss, 4), round(math.exp(min(loss, 700.0)), 4)


def change_percent(before: float | None, after: float | None) -> float | None:
    """How much `after` differs from `before`, in percent of `before` (+ is higher)."""
    if before is None or after is None or before == 0:
        return None
    return round((after - before) / before * 100, 2)


# --- which metrics fit the records --------------------------------------------------------------

def known() -> list[str]:
    return [EXACT, FIELDS, *LIBRARY]


def is_number(text: str) -> bool:
    """A reference that is a number, or ends with one after `####` (the GSM8K way)."""
    text = text.strip()
    if "####" in text:
        text = text.rsplit("####", 1)[1].strip()
    return bool(NUMBER.fullmatch(text))


def is_xml(text: str) -> bool:
    text = text.strip()
    if not text.startswith("<"):
        return False
    try:
        ET.fromstring(f"<r>{text}</r>")
    except ET.ParseError:
        return False
    return True


def choose(references: list[str | None], columns: set[str]) -> list[str]:
    """The metrics a task's records call for, when the person names none: exact match where there are
    reference answers, JSON fields where they all are JSON objects, numeric where they all are numbers,
    xml where they all are XML, code where the records carry unit tests (`tests`)."""
    given = [r for r in references if r is not None]
    chosen = []
    if given and len(given) == len(references):
        chosen.append(EXACT)
        if all(parse_json_object(r)[1] for r in given):  # each is one JSON object
            chosen.append(FIELDS)
        if all(is_number(r) for r in given):
            chosen.append("numeric")
        if all(is_xml(r) for r in given):
            chosen.append("xml")
    if "tests" in columns:
        chosen.append("code")
    return chosen


def check(metrics: list[str], references: list[str | None], answer_column: str = "answer") -> None:
    """MetricError when a metric is unknown, or needs reference answers that records lack."""
    unknown = [m for m in metrics if m not in known()]
    if unknown:
        raise MetricError(f"Unknown metric(s): {', '.join(unknown)}. Known: {', '.join(known())} "
                          "(and a reward model, with --reward-model).")
    if not metrics:
        raise MetricError("No metric fits these records (they have no reference answers): name some with --metric "
                          "(regex, xml, code, length, format) or a reward model with --reward-model.")
    missing = sum(r is None for r in references)
    for metric in metrics:
        if metric in NEEDS_REFERENCE and missing and (metric in OWN or answer_column == "answer"):
            raise MetricError(f"The metric '{metric}' compares answers with reference answers, and {missing} of "
                              f"{len(references)} eval record(s) have none: hold out chat or prompt/completion "
                              "records, or choose metrics that need none (regex, xml, code, length, format).")
        if metric == FIELDS and not missing and not all(parse_json_object(r)[0] is not None for r in references):
            raise MetricError("The metric 'fields' compares JSON fields, and some reference answers hold no JSON "
                              "object: choose exact_match or a reward of the library instead.")
