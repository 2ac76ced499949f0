"""Parameters of a judge run, and the prompt the judge reads (light: the UI edits it).

The judge grades each candidate alone with a template holding two placeholders:
`{prompt}` (the request, a conversation written out turn by turn) and `{answer}` (the
candidate). The filled template is the judge's user turn; its grade is read from its
next-token probabilities over the grades 1..10, so the template should ask for the number
alone. Other braces in the template are left as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from workbench import locations
from workbench.files import write_atomic
from workbench.params import param

TEMPLATE_FILE = "judge_prompt.txt"
PLACEHOLDERS = ("{prompt}", "{answer}")
DEFAULT_TEMPLATE = """You are grading an answer written by an assistant.

Request:
{prompt}

Answer:
{answer}

Grade the answer: is it helpful, correct and clear? Reply with one whole number from 1 (useless) \
to 10 (excellent), and nothing else.
"""


class TemplateError(ValueError):
    """A judge template that cannot be used; the message names what is missing."""


@dataclass
class JudgeParams:
    judge_model: str = param("", "The judge: base, run:<id>, run:<id>/checkpoint-N or a model path (required).",
                             group="method")
    session: str = param("", "The sampling session whose groups it ranks; empty = the newest one.", group="method")
    template_file: str = param("", f"The judge's prompt; empty = <project>/{TEMPLATE_FILE} (created with a "
                                   "default the first time). Needs {prompt} and {answer}.", group="method")
    max_groups: int = param(0, "Rank at most this many groups; 0 = every group of the session.", min=0,
                            group="method")


def template_path(project: str, template_file: str = "") -> Path:
    return Path(template_file).expanduser() if template_file.strip() else \
        locations.project_dir(project) / TEMPLATE_FILE


def check_template(text: str, where: str = "the judge template") -> str:
    missing = [p for p in PLACEHOLDERS if p not in text]
    if missing:
        raise TemplateError(f"{where} lacks {' and '.join(missing)}: the judge must see the request and the answer.")
    return text


def judging_template(project: str, template_file: str = "") -> str:
    """The judge's template: the given file, else the project's own (written with the default if absent)."""
    path = template_path(project, template_file)
    if not path.exists():
        if template_file.strip():
            raise TemplateError(f"The judge template {path} does not exist.")
        write_atomic(path, DEFAULT_TEMPLATE)
    return check_template(path.read_text(encoding="utf-8"), str(path))


def save_judge_template(project: str, text: str) -> Path:
    """Save the project's judge template, refusing one without its placeholders."""
    path = template_path(project)
    write_atomic(path, check_template(text))
    return path


def fill(template: str, prompt: str, answer: str) -> str:
    """The template with its placeholders replaced in one pass (braces in the texts stay as they are)."""
    values = {"{prompt}": prompt, "{answer}": answer}
    return re.sub(r"\{prompt\}|\{answer\}", lambda m: values[m.group(0)], template)
