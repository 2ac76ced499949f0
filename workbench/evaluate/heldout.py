"""Held-out evaluation: answer the project's eval split greedily, then score the answers.

    python -m workbench.evaluate.heldout PROJECT [RUN] [--limit N]

Without a run, the project's base model answers; with one, the base plus the run's
adapter (or its fully fine-tuned model; a stopped run uses its last checkpoint).
Answers are scored against the reference answers:

- `exact_match`: the answer equals the reference, spaces at both ends aside;
- `json_valid`: the whole answer is one JSON object (only for references that are JSON);
- `fields.<key>`: for references that are JSON objects, the share of records whose answer
  has the same value under that key. The value is read from the first JSON object found
  in the answer, so a model that wraps its JSON in prose or a code fence still gets the
  fields it got right (it loses `json_valid`). Values are compared case-sensitively after
  collapsing whitespace; a number equals its text ("1998" == 1998); a list equals its items
  joined by "; "; true, false and null equal only themselves;
- `field_accuracy`: all field checks of all records together.

The report is written as TOML: `runs/<run>/eval.toml`, or `eval-base.toml` in the project.
Scoring is pure Python; model imports happen inside the functions that load a model.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from workbench import locations, models
from workbench import project as projects
from workbench.data.importer import read_records
from workbench.data.prompts import answer_of, has_prompt, prompt_of
from workbench.files import write_toml
from workbench.run import layout

MAX_NEW_TOKENS = 64
BASE_REPORT = "eval-base.toml"
RUN_REPORT = layout.EVAL_REPORT

StatusFn = Callable[[str], None]


class EvalError(RuntimeError):
    """Nothing to evaluate, or nothing to evaluate it with; the message says what to do."""


# --- Scoring (pure) ----------------------------------------------------------------------------

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
    out: dict[str, Any] = {"records": n, "exact_match": _rate(sum(s.exact for s in scores), n)}
    structured = [s for s in scores if s.structured]
    if structured:
        out["json_valid"] = _rate(sum(s.json_valid for s in structured), len(structured))
        keys = list(dict.fromkeys(k for s in structured for k in s.fields))
        out["fields"] = {k: _rate(sum(s.fields[k] for s in structured if k in s.fields),
                                  sum(k in s.fields for s in structured)) for k in keys}
        checks = [ok for s in structured for ok in s.fields.values()]
        out["field_accuracy"] = _rate(sum(checks), len(checks))
    return out


def _rate(hits: int, total: int) -> float:
    return round(hits / total, 4) if total else 0.0


# --- Data ------------------------------------------------------------------------------------

@dataclass
class Example:
    prompt: list[dict[str, str]]
    reference: str


def to_example(record: dict) -> Example:
    """The prompt as messages (generation goes through the chat template) and the reference answer,
    by `workbench.data.prompts`."""
    reference = answer_of(record) if has_prompt(record) else None
    if reference is None:
        raise EvalError(f"A held-out record with fields {', '.join(sorted(record))} has no answer to compare with: "
                        "the eval split takes chat or prompt/completion records.")
    return Example(prompt=prompt_of(record, chat=True), reference=reference)


def eval_examples(project: projects.Project, limit: int | None = None) -> tuple[list[str], list[Example]]:
    entries = [d for d in project.datasets if d.split == "eval"]
    if not entries:
        raise EvalError(f"Project '{project.name}' has no eval split: import held-out data with "
                        f"`workbench import {project.name} FILE --split eval`.")
    examples = [to_example(r) for d in entries for r in read_records(project.path / d.file)]
    if limit is not None:
        examples = examples[:max(0, limit)]
    if not examples:
        raise EvalError(f"The eval split of '{project.name}' holds no records.")
    return [d.name for d in entries], examples


# --- Model and generation --------------------------------------------------------------------

def load_model(project: projects.Project, run_id: str | None, status: StatusFn):
    """(model, tokenizer, description) for the base or for a run's trained weights."""
    import torch
    from transformers import AutoModelForCausalLM

    if run_id is None:
        base = models.resolve(project.base_model, status=lambda message, progress=None: status(message))
        status(f"Loading {models.describe(project.base_model)}")
        return models.load_causal_lm(base), models.load_tokenizer(base), models.describe(project.base_model)

    from workbench.jobs.store import trained_weights
    from workbench.run.spec import JobSpec

    folder, is_adapter = trained_weights(project.name, run_id)
    spec = JobSpec.load(locations.run_dir(project.name, run_id))
    base = models.resolve(spec.model_path or spec.base_model,
                          status=lambda message, progress=None: status(message))
    tokenizer = models.load_tokenizer(folder if (folder / "tokenizer_config.json").exists() else base)
    label = f"{models.describe(spec.base_model)} + {run_id}/{folder.name}"
    if not is_adapter:
        status(f"Loading the fine-tuned model from {folder}")
        return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32), tokenizer, label
    from peft import PeftModel

    status(f"Loading {models.describe(spec.base_model)} with the adapter from {folder.name}")
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    return PeftModel.from_pretrained(model, folder).merge_and_unload(), tokenizer, label


def generate(model, tokenizer, prompts: list[list[dict]], max_new_tokens: int = MAX_NEW_TOKENS,
             batch_size: int = 8, status: StatusFn | None = None) -> list[str]:
    """Greedy answers, in the order of `prompts`; batches of similar length, left-padded."""
    import torch
    from transformers import GenerationConfig

    tokenizer.padding_side = "left"
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False,
                              eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    answers: list[str] = [""] * len(texts)
    model.eval()
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        batch = tokenizer([texts[i] for i in chunk], return_tensors="pt", padding=True, add_special_tokens=False)
        batch = batch.to(model.device)
        with torch.inference_mode():
            out = model.generate(**batch, generation_config=config)
        new = out[:, batch["input_ids"].shape[1]:]
        for i, tokens in zip(chunk, new):
            answers[i] = tokenizer.decode(tokens, skip_special_tokens=True).strip()
        if status:
            status(f"Answered {min(start + batch_size, len(order))}/{len(order)}")
    return answers


# --- The whole evaluation --------------------------------------------------------------------

def report_path(project_name: str, run_id: str | None) -> Path:
    if run_id is None:
        return locations.project_dir(project_name) / BASE_REPORT
    return locations.run_dir(project_name, run_id) / RUN_REPORT


def evaluate(project: str, run_id: str | None = None, limit: int | None = None,
             status: StatusFn | None = None, batch_size: int = 8) -> dict[str, Any]:
    """Answer and score the eval split; write the TOML report and return it as a dict."""
    status = status or (lambda message: None)
    proj = projects.load(project)
    datasets, examples = eval_examples(proj, limit)
    started = time.time()
    model, tokenizer, label = load_model(proj, run_id, status)
    status(f"Answering {len(examples)} held-out record(s)")
    answers = generate(model, tokenizer, [e.prompt for e in examples], batch_size=batch_size, status=status)
    scores = [score_answer(a, e.reference) for a, e in zip(answers, examples)]
    report = {
        "eval": {
            "project": project, "run": run_id or "base", "model": label, "datasets": datasets,
            "created": projects.now_iso(), "seconds": round(time.time() - started, 1),
            "max_new_tokens": MAX_NEW_TOKENS, **summarize(scores),
        },
        "records": [
            {"prompt": e.prompt[-1]["content"], "reference": e.reference, "answer": a, "exact": s.exact,
             **({"json_valid": s.json_valid, "fields": s.fields} if s.structured else {})}
            for e, a, s in zip(examples, answers, scores)
        ],
    }
    path = report_path(project, run_id)
    write_toml(path, report)
    report["path"] = str(path)
    return report


def describe(report: dict[str, Any]) -> str:
    """One line a person reads: what was scored and how it went."""
    e = report["eval"]
    text = f"{e['project']} {e['run']} ({e['model']}) on {e['records']} held-out record(s): "
    if "fields" in e:
        fields = ", ".join(f"{k} {v:.0%}" for k, v in e["fields"].items())
        text += f"JSON valid {e['json_valid']:.0%}, fields right {e['field_accuracy']:.0%} ({fields}), "
    return text + f"exact answers {e['exact_match']:.0%}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.evaluate.heldout", description=__doc__.splitlines()[0])
    parser.add_argument("project")
    parser.add_argument("run", nargs="?", help="a run id; without it, the base model is scored")
    parser.add_argument("--limit", type=int, help="score only the first N eval records")
    args = parser.parse_args(argv)
    from workbench.jobs.store import RunError

    try:
        report = evaluate(args.project, args.run, args.limit, status=lambda m: print(m, file=sys.stderr, flush=True))
    except (EvalError, projects.ProjectError, models.ModelError, RunError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(describe(report))
    print(report["path"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
