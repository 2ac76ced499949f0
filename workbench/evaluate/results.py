"""Where evaluation results live, how they are written and read, and the table a person reads.

A subject is what was evaluated: a run (`runs/<run>/evaluations/`), the project's base model
(`<project>/evaluations/base/`) or the base with k examples in its prompt, the few-shot baseline
(`<project>/evaluations/base-<k>shot/`), on the project's eval split; on other datasets (`eval
--dataset`), each in a folder of its own named after them (`.../evaluations/on-<names>/`,
`.../evaluations/base-on-<names>/`), so the eval split's results stay as they are. Each folder holds `results.toml` (the settings, the metrics,
the forgetting watch) and `generations.jsonl` (one line per held-out prompt: the prompt, the
reference, the answer, its scores). Both are written whole once the subject's evaluation has
completed, the generations first: a folder with `results.toml` is complete, and a stopped or
failed evaluation leaves its subject's previous results as they were. Light: no model imports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from workbench import locations
from workbench.files import read_toml, write_atomic, write_toml
from workbench.run import layout

BASE = "base"
ON = "on-"  # the start of an other-dataset folder's own part
ELSEWHERE = " on "  # between a metric and the datasets it was taken on, in a column's name: "exact_match on cited"


@dataclass(frozen=True)
class Subject:
    run: str = ""  # a run id; empty: the project's base model
    shots: int = 0  # examples from the train split in the prompt (the base model's few-shot baseline)
    on: str = ""  # the datasets evaluated on, "a+b", when not the project's eval split

    @property
    def name(self) -> str:
        own = self.run or (f"{BASE}+{self.shots}-shot" if self.shots else BASE)
        return f"{own} on {self.on}" if self.on else own

    def folder(self, project: str) -> Path:
        on = f"{ON}{self.on}" if self.on else ""
        if self.run:
            folder = layout.evaluations(locations.run_dir(project, self.run))
            return folder / on if on else folder
        own = f"{BASE}-{self.shots}shot" if self.shots else BASE
        return layout.evaluations(locations.project_dir(project)) / ("-".join((own, on)) if on else own)


def results_path(project: str, subject: Subject) -> Path:
    return subject.folder(project) / layout.EVAL_RESULTS


def generations_path(project: str, subject: Subject) -> Path:
    return subject.folder(project) / layout.EVAL_GENERATIONS


def read(project: str, subject: Subject) -> dict[str, Any] | None:
    """The subject's results, or None when it has none (or they cannot be read)."""
    path = results_path(project, subject)
    try:
        return read_toml(path) if path.exists() else None
    except (OSError, ValueError):
        return None


def read_generations(project: str, subject: Subject) -> list[dict[str, Any]]:
    path = generations_path(project, subject)
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def write(project: str, subject: Subject, results: dict[str, Any], generations: list[dict[str, Any]]) -> Path:
    """Write the subject's generations, then its results (each replaced whole); the results' path."""
    text = "".join(json.dumps(g, ensure_ascii=False) + "\n" for g in generations)
    write_atomic(generations_path(project, subject), text)
    path = results_path(project, subject)
    write_toml(path, results)
    return path


def elsewhere(project: str, subject: Subject) -> list[str]:
    """The datasets other than the eval split (each a `Subject.on`) that `subject`'s model (its run and shots;
    its own `on` aside) has results on, by name."""
    probe = replace(subject, on="?").folder(project)
    prefix, root = probe.name[:-1], probe.parent  # "on-", "base-on-" or "base-3shot-on-"
    if not root.is_dir():
        return []
    return sorted(d.name[len(prefix):] for d in root.iterdir()
                  if d.name.startswith(prefix) and len(d.name) > len(prefix) and (d / layout.EVAL_RESULTS).exists())


def fresh(project: str, subject: Subject, fingerprint: str) -> bool:
    """Whether the subject has results taken with the same data and settings."""
    found = read(project, subject)
    return bool(found) and found.get("eval", {}).get("fingerprint") == fingerprint


# --- reading the metrics ----------------------------------------------------------------------------

def flat(results: dict[str, Any] | None) -> dict[str, float]:
    """The figures of one results file under dotted names (fields.title, rewards.numeric, forgetting.change)."""
    if not results:
        return {}
    out: dict[str, float] = {}
    for key, value in results.get("metrics", {}).items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items() if isinstance(v, (int, float))})
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = value
    forgetting = results.get("forgetting", {})
    for key, name in (("perplexity", "forgetting.perplexity"), ("change_percent", "forgetting.change_percent")):
        if isinstance(forgetting.get(key), (int, float)):
            out[name] = forgetting[key]
    seconds = results.get("eval", {}).get("seconds")
    if isinstance(seconds, (int, float)):
        out["seconds"] = seconds
    return out


LABELS = {
    "records": "records", "loss": "held-out loss", "perplexity": "held-out perplexity",
    "exact_match": "exact match", "json_valid": "JSON valid", "field_accuracy": "fields right (all)",
    "reward_model": "reward model (mean)", "judge_win_rate": "judge: wins vs base",
    "cut": "cut by the token limit",
    "forgetting.perplexity": "forgetting: English perplexity",
    "forgetting.change_percent": "forgetting: change vs base", "seconds": "seconds",
}
RATES = ("exact_match", "json_valid", "field_accuracy", "fields.", "rewards.", "judge_win_rate", "cut")
LOWER_IS_BETTER = ("loss", "perplexity", "cut", "forgetting.perplexity", "forgetting.change_percent", "seconds")


def label(name: str) -> str:
    if name in LABELS:
        return LABELS[name]
    if name.startswith("fields."):
        return f"field {name[7:]}"
    if name.startswith("rewards."):
        return f"reward {name[8:]} (mean)"
    if name.startswith("lm_eval."):
        return f"lm-eval {name[8:]}"
    return name


def fmt(name: str, value: float | None) -> str:
    if value is None:
        return "-"
    if name == "records":
        return str(int(value))
    if name == "forgetting.change_percent":
        return f"{value:+.1f}%"
    if name == "seconds":
        return f"{value:.0f}"
    if name.startswith(RATES) and 0 <= value <= 1:
        return f"{value:.0%}"
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"


def order(names: list[str]) -> list[str]:
    """Metric names in reading order: those of LABELS in its order, each JSON field after the field
    accuracy, the rewards after the reward model (before the share cut), seconds last."""
    ranked = [n for n in LABELS if n in names]
    fields = [n for n in names if n.startswith("fields.")]  # in the references' order
    other = sorted(n for n in names if n not in LABELS and not n.startswith("fields."))
    at = ranked.index("field_accuracy") + 1 if "field_accuracy" in ranked else len([n for n in ranked if n in (
        "records", "loss", "perplexity", "exact_match", "json_valid")])
    ranked[at:at] = fields
    at = next((ranked.index(n) for n in ("cut", "forgetting.perplexity", "seconds") if n in ranked), len(ranked))
    ranked[at:at] = other
    return ranked


def table(columns: list[tuple[str, dict[str, Any] | None]]) -> list[list[str]]:
    """Header and rows: one row per metric, one column per subject (its name, its results)."""
    figures = [(name, flat(results)) for name, results in columns]
    names = order(list(dict.fromkeys(k for _, f in figures for k in f)))
    rows = [["metric"] + [name for name, _ in figures]]
    for metric in names:
        rows.append([label(metric)] + [fmt(metric, f.get(metric)) for _, f in figures])
    return rows


def render(rows: list[list[str]], markdown: bool = False) -> str:
    """Rows as aligned text columns, or as a Markdown table."""
    if markdown:
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(rows[0])]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows[1:]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)
