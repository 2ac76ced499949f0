"""The records an evaluation asks about, and the prompts it asks them with.

Held-out examples come from the project's eval split (`eval_examples`), each with its prompt as
messages (generation goes through the chat template), its reference answer (None for records
that give none, such as prompt records with unit tests) and the columns rule rewards read, all by
`workbench.data.prompts`, the one record -> prompt rule.

The few-shot baseline asks the base model with `k` solved examples in its prompt
(`few_shot_prompt`): the held-out prompt's system turn, if it has one, first; then, for each
example, its prompt's turns (its own system turn left out) and its reference answer as an
assistant turn; then the held-out prompt's other turns. The examples are drawn once from the train
split, seeded, among the records with a reference answer whose prompt is no held-out prompt, so
every held-out prompt gets the same examples in the same order.

Light: no model imports.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any

from workbench import project as projects
from workbench.data.prep import read_source
from workbench.data.prompts import answer_of, has_prompt, prompt_of, prompt_row
from workbench.run.spec import DataSource

Messages = list[dict[str, str]]


class EvalError(RuntimeError):
    """Nothing to evaluate, or nothing to evaluate it with; the message says what to do."""


@dataclass
class Example:
    prompt: Messages
    reference: str | None
    columns: dict[str, Any] = field(default_factory=dict)  # what rule rewards read: answer, tests, ...


def to_example(record: dict) -> Example:
    if not has_prompt(record):
        raise EvalError(f"A held-out record with fields {', '.join(sorted(record))} has no prompt: the eval split "
                        "takes chat, prompt/completion or prompt records.")
    row = prompt_row(record, chat=True)
    columns = {k: v for k, v in row.items() if k != "prompt"}
    return Example(prompt=prompt_of(record, chat=True), reference=answer_of(record), columns=columns)


def sources(project: projects.Project, split: str) -> list[DataSource]:
    return [DataSource(dataset=d.name, file=str(project.path / d.file), kind=d.kind)
            for d in project.datasets if d.split == split]


def read_examples(found: list[DataSource], limit: int | None = None) -> list[Example]:
    examples = [to_example(r) for source in found for r in read_source(source)]
    return examples[:max(0, limit)] if limit is not None else examples


def chosen_sources(project: projects.Project, names: list[str] | tuple[str, ...] = ()) -> list[DataSource]:
    """The datasets an evaluation reads: the eval split, or the ones named (any split, EvalError for a name the
    project does not have)."""
    if not names:
        return sources(project, "eval")
    known = {d.name: d for d in project.datasets}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise EvalError(f"Project '{project.name}' has no dataset '{unknown[0]}': it has "
                        f"{', '.join(known) or 'none'}.")
    return [DataSource(dataset=n, file=str(project.path / known[n].file), kind=known[n].kind)
            for n in dict.fromkeys(names)]


def eval_examples(project: projects.Project, limit: int | None = None,
                  names: list[str] | tuple[str, ...] = ()) -> tuple[list[str], list[Example]]:
    """(the datasets' names, their examples, the first `limit` when given): the eval split's, or the named
    datasets' (`chosen_sources`)."""
    found = chosen_sources(project, names)
    if names and not any(has_prompt(r) for s in found for r in read_source(s)):
        raise EvalError(f"Dataset(s) {', '.join(names)} hold no record with a prompt to answer.")
    if not found:
        raise EvalError(f"Project '{project.name}' has no eval split: import held-out data with "
                        f"`workbench import {project.name} FILE --split eval`, or hold some out with "
                        f"`workbench split {project.name} DATASET`.")
    examples = read_examples(found, limit)
    if not examples:
        raise EvalError(f"The eval split of '{project.name}' holds no records.")
    return [s.dataset for s in found], examples


def shot_pool(project: projects.Project, held_out: list[Example]) -> list[Example]:
    """The train records a few-shot prompt may show: with a reference answer, their prompt no held-out one."""
    taken = {key(e.prompt) for e in held_out}
    pool = []
    for source in sources(project, "train"):
        for record in read_source(source):
            if not has_prompt(record):
                continue
            example = to_example(record)
            if example.reference is not None and key(example.prompt) not in taken:
                pool.append(example)
    return pool


def draw_shots(pool: list[Example], k: int, seed: int) -> list[Example]:
    """`k` examples of `pool`, drawn with `seed` (EvalError when the pool holds fewer)."""
    if k > len(pool):
        raise EvalError(f"--few-shot {k} needs {k} train records with a reference answer (and a prompt that is not "
                        f"held out); the train split has {len(pool)}.")
    return random.Random(seed).sample(pool, k)


def few_shot_prompt(shots: list[Example], prompt: Messages) -> Messages:
    """The held-out `prompt` with the solved `shots` before it, by the rule of the module docstring."""
    system = [m for m in prompt[:1] if m.get("role") == "system"]
    out = list(system)
    for shot in shots:
        out += [m for m in shot.prompt if m.get("role") != "system"]
        out.append({"role": "assistant", "content": shot.reference or ""})
    return out + [m for m in prompt if m.get("role") != "system"]


def key(prompt: Any) -> str:
    return json.dumps(prompt, sort_keys=True, ensure_ascii=False)


def fingerprint(*parts: Any) -> str:
    """A short hash of what a result depends on (the examples, the settings), to tell when it is stale."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=lambda o: getattr(o, "__dict__", str(o)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
