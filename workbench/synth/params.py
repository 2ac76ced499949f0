"""Parameters of synthetic data from a teacher: which task, which prompts, which filters."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from workbench import project as projects
from workbench.params import ParamError, param

TASKS = ("answers", "questions", "reasoning")
FORMATS = ("none", "json", "think")

QUESTION_TEMPLATE = ("Here is an answer:\n\n{answer}\n\nWrite the question or instruction that this text answers. "
                     "Reply with the question alone.")
REASONING_TEMPLATE = ("{question}\n\nThink it through step by step between <think> and </think>, "
                      "then give the final answer after </think>.")

# Each task's template: its name, the placeholder it must use (and the only one it may).
TEMPLATES = {"answers": ("answer_template", "question"), "questions": ("question_template", "answer"),
             "reasoning": ("reasoning_template", "question")}


def check_template(name: str, template: str, placeholder: str) -> None:
    """A template holds its one placeholder (e.g. {question}); literal braces are written {{ and }}."""
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise ParamError(f"{name}: {exc}; write a literal brace as {{{{ or }}}}.") from None
    unknown = sorted(fields - {placeholder})
    if unknown:
        raise ParamError(f"{name}: unknown placeholder {{{unknown[0]}}}; this template may only use "
                         f"{{{placeholder}}}.")
    if placeholder not in fields:
        raise ParamError(f"{name}: the template must contain {{{placeholder}}}, where each record's "
                         f"{placeholder} goes.")


@dataclass
class SynthParams:
    task: str = param("answers", "answers: the teacher answers each prompt; questions: it writes the question each "
                                 "answer or text responds to; reasoning: <think>...</think> traces, then the answer.",
                      choices=TASKS, group="method")
    teacher: str = param("base", "The model that writes: base, run:<id>, run:<id>/checkpoint-N or a model folder.",
                         group="method")
    output: str = param("", "Name of the new dataset (default <task>-<source dataset>); one of that name is "
                            "replaced.", group="method")
    n_per_prompt: int = param(1, "Generations per source record.", min=1, max=64, group="method")
    temperature: float = param(0.7, "Sampling temperature; 0 is greedy (then n_per_prompt > 1 repeats itself).",
                               min=0, max=5, group="method")
    max_new_tokens: int = param(256, "Tokens generated at most per answer.", min=1, max=32768, group="method")
    batch_size: int = param(8, "Prompts generated together.", min=1, max=1024, group="method")
    limit: int = param(0, "Use only the first N source records; 0 uses all.", min=0, group="method")
    system_prompt: str = param("", "A system message put before every prompt (empty: none).", group="prompts")
    answer_template: str = param("{question}", "answers: the user message; {question} is the record's prompt.",
                                 group="prompts")
    question_template: str = param(QUESTION_TEMPLATE, "questions: the user message; {answer} is the record's "
                                                      "answer or text.", group="prompts")
    reasoning_template: str = param(REASONING_TEMPLATE, "reasoning: the user message; {question} is the record's "
                                                        "prompt.", group="prompts")
    min_chars: int = param(1, "Drop generations shorter than this many characters.", min=0, group="filters")
    max_chars: int = param(0, "Drop generations longer than this many characters; 0: no limit.", min=0,
                           group="filters")
    require_regex: str = param("", "Keep only generations in which this regular expression matches.",
                               group="filters")
    require_format: str = param("none", "Keep only generations of this form: json (parses as JSON), think "
                                        "(<think>...</think> then an answer; always on for reasoning).",
                                choices=FORMATS, group="filters")
    dedupe: bool = param(True, "Drop records identical to a kept one after normalising case, spaces and "
                               "punctuation.", group="filters")
    near_duplicate: float = param(0.8, "Drop records whose word 3-shingles overlap a kept record's at least this "
                                       "much (Jaccard); 1 keeps near-duplicates.", min=0.05, max=1,
                                  group="filters")
    check_answer: bool = param(True, "reasoning: keep a trace only when its final answer agrees with the record's "
                                     "known answer (its answer field or completion), where it has one.",
                               group="filters")
    answer_field: str = param("answer", "The field of prompt records that holds the known answer.",
                              group="filters")

    def __post_init__(self):
        for name, placeholder in TEMPLATES.values():
            check_template(name, getattr(self, name), placeholder)
        if self.output:
            try:
                projects.validate_name(self.output)
            except projects.ProjectError as exc:
                raise ParamError(f"output: {exc}") from None
        try:
            re.compile(self.require_regex)
        except re.error as exc:
            raise ParamError(f"require_regex: '{self.require_regex}' is not a regular expression ({exc}).") from None
        if self.max_chars and self.max_chars < self.min_chars:
            raise ParamError(f"max_chars: {self.max_chars} is below min_chars {self.min_chars}.")
