"""A run's report in Markdown: what it was, how it learnt, how it scores against the base, what it now says.

Sections: the run (method, base model, parameters, state); its curves (loss, eval loss, reward
where the method logs one) as sparklines and a small table of evenly spaced steps; its final
metrics next to the base model's and the few-shot baseline's (the latest evaluations, see
`results`), the forgetting watch among them; example generations, base and tuned answers to the
same held-out prompts side by side. A run also evaluated on other datasets (`eval --dataset`) gets both
sections again for each of them ("Metrics on NAME", "Example generations on NAME"): the run next to the
base and the baseline on the same records, where they were taken. Light: no model imports.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from workbench import models
from workbench.evaluate import results
from workbench.evaluate.compare import few_shot_subjects
from workbench.evaluate.job import check_run
from workbench.evaluate.results import Subject
from workbench.jobs import store
from workbench.run import events as ev
from workbench.run import layout
from workbench.run.spec import JobSpec

BARS = "▁▂▃▄▅▆▇█"
CURVE_ROWS = 8
EXAMPLES = 5


def sparkline(values: list[float], width: int = 40) -> str:
    """`values` as block characters, lowest to highest, at most `width` of them (evenly picked)."""
    if not values:
        return ""
    if len(values) > width:
        values = [values[round(i * (len(values) - 1) / (width - 1))] for i in range(width)]
    low, high = min(values), max(values)
    span = high - low
    return "".join(BARS[0 if span == 0 else min(len(BARS) - 1, int((v - low) / span * len(BARS)))] for v in values)


def curves(events: list[ev.Event]) -> dict[str, list[tuple[int, float]]]:
    """(step, value) series: loss and reward from the training logs, eval loss from the evaluations."""
    out: dict[str, list[tuple[int, float]]] = {"loss": [], "eval loss": [], "reward": []}
    for e in events:
        if isinstance(e, ev.Log):
            if e.loss is not None:
                out["loss"].append((e.step, e.loss))
            if isinstance(e.metrics.get("reward"), (int, float)):
                out["reward"].append((e.step, e.metrics["reward"]))
        elif isinstance(e, ev.Eval) and e.loss is not None:
            out["eval loss"].append((e.step, e.loss))
    return {k: v for k, v in out.items() if v}


def curve_table(series: dict[str, list[tuple[int, float]]], rows: int = CURVE_ROWS) -> list[str]:
    """A Markdown table of each series at up to `rows` evenly spaced steps (the last value at or before each)."""
    steps = sorted({s for points in series.values() for s, _ in points})
    if not steps:
        return []
    picked = sorted({steps[round(i * (len(steps) - 1) / max(1, rows - 1))] for i in range(min(rows, len(steps)))})
    names = list(series)
    lines = ["| step | " + " | ".join(names) + " |", "|" + " --- |" * (len(names) + 1)]
    for step in picked:
        cells = []
        for name in names:
            before = [v for s, v in series[name] if s <= step]
            cells.append(f"{before[-1]:.4f}" if before else "-")
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return lines


def quote(text: str | None) -> str:
    text = "" if text is None else str(text)
    fence = "```" if "```" not in text else "~~~"
    return f"{fence}\n{text}\n{fence}"


def build(project: str, run_id: str) -> str:
    """The report's Markdown text (RunError when the run does not exist or trained nothing)."""
    check_run(project, run_id)
    info = store.get(project, run_id)
    spec = JobSpec.load(info.path)
    lines = [f"# {run_id} ({project})", ""]
    lines += [f"- method: {info.method}", f"- base model: {models.describe(spec.base_model)} (from {spec.base_ref})",
              f"- state: {info.state}, step {info.step}" + (f"/{info.total_steps}" if info.total_steps else ""),
              f"- created: {spec.created}",
              "- parameters: " + ", ".join(f"{k}={v}" for k, v in spec.params.items()), ""]

    series = curves(info.events)
    lines += ["## Curves", ""]
    if series:
        for name, points in series.items():
            values = [v for _, v in points]
            lines.append(f"- {name}: `{sparkline(values)}` {values[0]:.4f} -> {values[-1]:.4f} "
                         f"(min {min(values):.4f}, {len(values)} points)")
        lines += [""] + curve_table(series) + [""]
    else:
        lines += ["No logged values.", ""]

    lines += metrics(project, run_id) + examples(project, run_id)
    for on in datasets(project, run_id):
        lines += metrics(project, run_id, on) + examples(project, run_id, on=on)
    return "\n".join(lines).rstrip() + "\n"


def datasets(project: str, run_id: str) -> list[str]:
    """The datasets other than the eval split that the run was evaluated on (each a `Subject.on`), by name."""
    return results.elsewhere(project, Subject(run=run_id))


def subjects(project: str, run_id: str, on: str = "") -> list[Subject]:
    """What a run's report sets side by side: the base, the few-shot baseline with the most examples, the run (on
    the eval split, or on the datasets `on`)."""
    return [Subject(on=on), *few_shot_subjects(project, on)[-1:], Subject(run=run_id, on=on)]


def metrics(project: str, run_id: str, on: str = "") -> list[str]:
    """The metrics section: the run's figures next to the base's and the baseline's, and when they were taken."""
    columns = [(replace(s, on="").name, results.read(project, s)) for s in subjects(project, run_id, on)]  # on: the title's
    lines = [f"## Metrics on {on}" if on else "## Metrics", ""]
    if columns[-1][1] is None:
        lines += [f"Not evaluated yet: `workbench eval {project} {run_id}` takes its metrics.", ""]
    lines += [results.render(results.table(columns), markdown=True), ""]
    taken = [f"{name}: {r['eval'].get('created', '?')}, {r['eval'].get('model', '?')}, "
             f"{', '.join(r['eval'].get('datasets', []))}" for name, r in columns if r]
    if taken:
        lines += ["Taken on: " + "; ".join(taken) + ".", ""]
    return lines


def example_pairs(project: str, run_id: str, count: int | None = EXAMPLES,
                  on: str = "") -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(the run's generation, the base's for the same prompt or {}) for its first `count` prompts of the eval
    split (or of the datasets `on`)."""
    base = {g.get("prompt"): g for g in results.read_generations(project, Subject(on=on))}
    tuned = results.read_generations(project, Subject(run=run_id, on=on))
    return [(g, base.get(g.get("prompt"), {})) for g in tuned[:count]]


def examples(project: str, run_id: str, count: int = EXAMPLES, on: str = "") -> list[str]:
    """Example generations: the same prompts answered by the base and by the run."""
    lines = [f"## Example generations on {on}" if on else "## Example generations", ""]
    pairs = example_pairs(project, run_id, count, on)
    if not pairs:
        return lines + ["None yet (the run has not been evaluated).", ""]
    for n, (g, other) in enumerate(pairs, start=1):
        lines += [f"### {n}. Prompt", "", quote(g.get("prompt")), ""]
        if g.get("reference") is not None:
            lines += ["Reference:", "", quote(g["reference"]), ""]
        lines += ["| base | tuned |", "| --- | --- |",
                  f"| {answer_cell(other) if other else '-'} | {answer_cell(g)} |", ""]
    return lines


def cell(text: Any) -> str:
    """Text fit for one Markdown table cell."""
    return (str(text) if text not in (None, "") else "(empty)").replace("|", "\\|").replace("\n", "<br>")


def answer_cell(generation: dict[str, Any]) -> str:
    """A generation's answer as a table cell, said to be cut where the token limit ended it."""
    cut = f"<br>*(cut at {generation['cut']} tokens)*" if generation.get("cut") else ""
    return cell(generation.get("answer")) + cut


def write(project: str, run_id: str, out: Path | None = None) -> Path:
    """Write the report (default: in the run's eval folder); its path."""
    from workbench.files import write_atomic

    text = build(project, run_id)
    path = Path(out).expanduser() if out else Subject(run=run_id).folder(project) / layout.EVAL_REPORT
    write_atomic(path, text)
    return path
