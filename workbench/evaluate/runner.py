"""The worker's side of an evaluation job (`job` starts it): each subject the spec names, in turn.

For each subject: load its model (the base once for the base and the few-shot baseline), answer
the held-out prompts (`generation`), score the answers (`metrics`, the rule rewards, the reward
model), measure the held-out loss and the forgetting watch, then write its results whole
(`results.write`) and report them with an `artifact` event naming the results file. A `log` event
per batch says how many answers of the job are done. A stop ends the job at once, except while a
subject's files are written; the subject it interrupted keeps its previous results, untouched.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from workbench import project as projects
from workbench.evaluate import harness, results
from workbench.evaluate import metrics as mt
from workbench.evaluate.heldout import Example, draw_shots, few_shot_prompt, read_examples, shot_pool
from workbench.evaluate.results import Subject
from workbench.rewards import load_rewards, reward_options
from workbench.run import events as ev
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec


def run(spec: JobSpec, job: JobContext) -> Path:
    """The runner the worker calls: each subject the spec names, evaluated and written in turn."""
    from workbench.evaluate import generation as gen

    p = spec.params
    examples = read_examples(spec.eval, p["limit"] or None)
    todo = [Subject(**s) for s in p["todo"]]
    shots = draw_shots(shot_pool(projects.load(spec.project), examples), p["few_shot"], p["seed"]) \
        if p["few_shot"] else []
    device = spec.runtime.device
    dtype = "bfloat16" if spec.runtime.precision == "bf16" else "float32"
    total = len(examples) * len(todo)
    job.data_counts = (0, len(examples))
    done = 0

    def answered(n: int) -> None:
        nonlocal done
        done += n
        job.last_step = done
        job.emit(ev.Log(step=done, total_steps=total))

    reward_model = None
    if p["reward_model"]:
        from workbench.rewards.model import load_reward_model

        job.status(f"Loading the reward model {p['reward_model']}")
        reward_model = load_reward_model(spec.project, p["reward_model"], dtype, device, status=job.status)
    loaded: tuple[str, Any] | None = None  # (run id, (model, tokenizer, label)): the base serves base and few-shot
    written = Path()
    for subject in todo:
        job.check_stop()
        started = time.time()
        if loaded is None or loaded[0] != subject.run:
            loaded = None  # free the previous model first
            loaded = (subject.run, gen.load(spec.project, spec.base_model, subject.run, device, dtype, job.status))
        model, tokenizer, label = loaded[1]
        prompts = [few_shot_prompt(shots, e.prompt) if subject.shots else e.prompt for e in examples]
        references = [e.reference for e in examples]
        max_new = p["max_new_tokens"] or gen.auto_max_new_tokens(tokenizer, references)
        job.status(f"{subject.name}: answering {len(prompts)} held-out prompt(s), up to {max_new} new tokens each")
        answers, cut = gen.generate_marked(model, tokenizer, prompts, max_new, p["batch_size"], answered)
        job.status(f"{subject.name}: scoring")
        summary, per_record = score(examples, answers, p["metrics"], p["options"], reward_model)
        if answers:  # the share the token limit ended: an invalid answer told from an unfinished one
            summary["cut"] = round(sum(cut) / len(answers), 4)
        if all(r is not None for r in references):
            summary["loss"], summary["perplexity"] = mt.perplexity(
                *gen.answer_nll(model, tokenizer, prompts, references, p["batch_size"]))
        if subject.run and p.get("judge_model"):
            job.status(f"{subject.name}: the judge {p['judge_model']} grades its answers and the base's")
            summary["judge_win_rate"] = judge_against_base(spec.project, p, examples, answers, per_record, device)
        extra = {}
        if p.get("lm_eval") and not subject.shots:  # the harness's tasks (a task brings its own few shots)
            job.status(f"{subject.name}: lm-eval tasks {', '.join(p['lm_eval']['tasks'])}")
            extra = harness.run(spec.project, p["lm_eval"], model, tokenizer, p["batch_size"], p["limit"] or None,
                                device, job.check_stop, lambda m, who=subject.name: job.status(f"{who}: {m}"))
            summary["lm_eval"] = extra["metrics"]
        forgetting = {}
        if not subject.shots:
            job.status(f"{subject.name}: perplexity of the forgetting watch's English text")
            forgetting = forgetting_watch(spec.project, subject, gen.text_nll(model, tokenizer, gen.forgetting_text()))
        report = {
            "eval": {"subject": subject.name, "project": spec.project, "run": subject.run, "shots": subject.shots,
                     "model": label, "job": spec.id, "datasets": p["datasets"], "created": projects.now_iso(),
                     "seconds": round(time.time() - started, 1), "max_new_tokens": max_new,
                     "batch_size": p["batch_size"], "device": device, "metrics": p["metrics"],
                     "options": p["options"], "reward_model": p["reward_model"],
                     "fingerprint": p["fingerprints"][subject.name]},
            "metrics": summary,
        }
        if forgetting:
            report["forgetting"] = forgetting
        if extra:
            report["lm_eval"] = extra["tasks"]
        if subject.shots:
            report["eval"]["examples"] = [s.prompt[-1]["content"] for s in shots]
        generations = [{"index": i, "prompt": e.prompt[-1]["content"], "reference": e.reference, "answer": a,
                        "scores": s, **({"cut": max_new} if c else {})}
                       for i, (e, a, s, c) in enumerate(zip(examples, answers, per_record, cut))]
        job.training = True  # written whole: a stop now waits for both files
        written = results.write(spec.project, subject, report, generations)
        job.training = False
        job.emit(ev.Artifact(path=str(written), size=written.stat().st_size,
                             verification=one_line(subject.name, report)), sync=True)
        job.check_stop()
    return written


def score(examples: list[Example], answers: list[str], metrics: list[str], options: dict[str, Any],
          reward_model=None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the summary over the records, each record's scores) of `answers` by `metrics`."""
    per_record: list[dict[str, Any]] = [{} for _ in answers]
    summary: dict[str, Any] = {"records": len(answers)}
    if mt.EXACT in metrics or mt.FIELDS in metrics:
        scored = [mt.score_answer(a, e.reference or "") for a, e in zip(answers, examples)]
        rates = mt.summarize(scored)
        keep = ([mt.EXACT] if mt.EXACT in metrics else []) + \
            (["json_valid", "fields", "field_accuracy"] if mt.FIELDS in metrics else [])
        summary.update({k: rates[k] for k in keep if k in rates})
        for row, s in zip(per_record, scored):
            if mt.EXACT in metrics:
                row[mt.EXACT] = s.exact
            if mt.FIELDS in metrics and s.structured:
                row.update({"json_valid": s.json_valid, "fields": s.fields})
    rule = [m for m in metrics if m not in mt.OWN]
    prompts = [e.prompt for e in examples]
    if rule:
        names = list(dict.fromkeys(k for e in examples for k in e.columns))
        cols = {k: [e.columns.get(k) for e in examples] for k in names}
        summary["rewards"] = {}
        for reward in load_rewards(",".join(f"{n}:1" for n in rule), options=reward_options(options)):
            scores = reward(prompts, answers, **cols)
            summary["rewards"][reward.name] = mt.mean_score(scores)
            for row, s in zip(per_record, scores):
                row.setdefault("rewards", {})[reward.name] = s
    if reward_model is not None:
        scores = reward_model.score(prompts, answers)
        summary[mt.REWARD_MODEL] = mt.mean_score(scores)
        for row, s in zip(per_record, scores):
            row[mt.REWARD_MODEL] = round(s, 4)
    return summary, per_record


def judge_against_base(project: str, p: dict[str, Any], examples: list[Example], answers: list[str],
                       per_record: list[dict[str, Any]], device: str) -> float | None:
    """The share of held-out prompts where the judge grades the run's answer above the base's (a tie counts
    half), each answer graded alone as the ranking judge grades (`ranking.judge`)."""
    from workbench import models
    from workbench.ranking.judge import Judge, render_prompt
    from workbench.ranking.judge_params import fill, judging_template
    from workbench.run.model_refs import resolve_ref

    base = results.read_generations(project, Subject(on=p.get("on", "")))
    if len(base) != len(answers):
        return None
    template = judging_template(project, p.get("judge_template", ""))
    judge = Judge(models.resolve(resolve_ref(project, p["judge_model"])), "float32", device)
    points = []
    for example, answer, other, row in zip(examples, answers, base, per_record):
        prompt = render_prompt(example.prompt)
        tuned = judge.grade(fill(template, prompt, answer))
        before = judge.grade(fill(template, prompt, other["answer"]))
        row["judge"] = {"run": round(tuned, 3), "base": round(before, 3)}
        points.append(1.0 if tuned > before else 0.5 if tuned == before else 0.0)
    return mt.rate(sum(points), len(points))


def forgetting_watch(project: str, subject: Subject, nll: tuple[float, int]) -> dict[str, Any]:
    """The subject's perplexity on the English text and, for a run, its change from the base model's."""
    _, ppl = mt.perplexity(*nll)
    out: dict[str, Any] = {"perplexity": ppl, "tokens": nll[1]}
    if subject.run:
        base = (results.read(project, Subject(on=subject.on)) or {}).get("forgetting", {}).get("perplexity")
        out["base_perplexity"] = base
        out["change_percent"] = mt.change_percent(base, ppl)
    return out


def one_line(name: str, report: dict[str, Any]) -> str:
    """What a subject scored, for a person."""
    m = report["metrics"]
    parts = [f"{name}: {m['records']} record(s)"]
    if "loss" in m:
        parts.append(f"loss {m['loss']:.3f}")
    if "json_valid" in m:
        parts.append(f"JSON valid {m['json_valid']:.0%}, fields right {m['field_accuracy']:.0%}")
    if mt.EXACT in m:
        parts.append(f"exact {m[mt.EXACT]:.0%}")
    for reward, value in m.get("rewards", {}).items():
        parts.append(f"{reward} {'-' if value is None else f'{value:.2f}'}")
    if m.get(mt.REWARD_MODEL) is not None:
        parts.append(f"reward model {m[mt.REWARD_MODEL]:.3f}")
    for task, value in m.get("lm_eval", {}).items():
        parts.append(f"lm-eval {task} {value:.4g}")
    change = report.get("forgetting", {}).get("change_percent")
    if change is not None:
        parts.append(f"English perplexity {change:+.1f}% vs base")
    return ", ".join(parts)
