"""A judge model ranks the groups of a sampling session, as a person would.

Each candidate is graded alone (pointwise): the judge reads the filled template (see
`judge_params`) as its user turn, and the grade is the expected value of the grades 1..10
under its next-token distribution, renormalised over those grades. Nothing is parsed, so
any causal LM works, even a random one. Grades of several tokens ("10" where digits are
single tokens) are scored through their whole token sequence, and the probability of a grade
whose tokens begin a longer grade ("1" of "10") is counted without the longer one.

Candidates are ranked by grade, best first; those sharing the lowest grade are tied at the
end (the ranking format ties only the rest; equal grades higher up, which only identical
answers get in practice, keep their order). Each group is committed like a person's ranking,
with `by="judge:<model>"`, the session and the prompt index. While the session's sampler is
running the judge follows it, so a sampler waiting for the ranking goes on; it ends when
every prompt is judged, the sampler has ended and nothing is left, or `max_groups` is reached.

The recipe: params -> template -> session -> judge model -> loop.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Any

from workbench import locations, models
from workbench import params as params_mod
from workbench import project as projects
from workbench.jobs import store
from workbench.methods.kit.train_args import dtype_name
from workbench.params import ParamError
from workbench.ranking import candidates as cands
from workbench.ranking import rankings as ranking
from workbench.ranking.judge_params import JudgeParams, fill, judging_template
from workbench.run import events as ev
from workbench.run import liveness
from workbench.run.context import JobContext
from workbench.run.model_refs import resolve_ref
from workbench.run.spec import JobSpec

GRADES = tuple(range(1, 11))
POLL_SECONDS = 0.5


def render_prompt(prompt: Any) -> str:
    """A request as the judge reads it: the text, or each turn of a conversation with its role."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in prompt)


def expected_grade(logprobs: dict[int, float], tokens: dict[int, list[int]]) -> float:
    """E[grade] from the log-probability of each grade's token sequence.

    A grade whose tokens are a prefix of another's ("1" of "10") loses that other's probability,
    so each grade is counted once; all-zero probabilities give the middle grade."""
    probs = {g: math.exp(lp) for g, lp in logprobs.items()}
    own = {}
    for g, p in probs.items():
        longer = [h for h in probs if len(tokens[h]) > len(tokens[g]) and tokens[h][:len(tokens[g])] == tokens[g]]
        own[g] = max(0.0, p - sum(probs[h] for h in longer))
    total = sum(own.values())
    if total <= 0:
        return sum(GRADES) / len(GRADES)
    return sum(g * p for g, p in own.items()) / total


def order_by_score(scores: list[float]) -> tuple[list[int], list[int]]:
    """(ranking, tied): indices best first; those sharing the lowest score (two or more) are tied."""
    rounded = [round(s, 6) for s in scores]
    order = sorted(range(len(scores)), key=lambda i: (-rounded[i], i))
    lowest = [i for i in order if rounded[i] == rounded[order[-1]]]
    if len(lowest) >= 2:
        return [i for i in order if i not in lowest], lowest
    return order, []


class Judge:
    """A causal LM that grades one answer at a time."""

    def __init__(self, folder: Path, dtype: str, device: str):
        self.tokenizer = models.load_tokenizer(folder)
        self.model = models.load_causal_lm(folder, dtype, device).eval()
        self.chat = bool(self.tokenizer.chat_template)

    def context(self, text: str) -> tuple[list[int], dict[int, list[int]]]:
        """(token ids the judge reads, the token ids of each grade right after them)."""
        tok = self.tokenizer
        if self.chat:
            context = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                              add_generation_prompt=True)
            special, sep = False, ""
        else:
            context, special, sep = text.rstrip() + "\nGrade:", True, " "
        ids = tok(context, add_special_tokens=special)["input_ids"]
        grades = {}
        for g in GRADES:
            full = tok(context + sep + str(g), add_special_tokens=special)["input_ids"]
            grades[g] = full[len(ids):] if full[:len(ids)] == ids and len(full) > len(ids) else \
                tok(sep + str(g), add_special_tokens=False)["input_ids"]
        return ids, grades

    def grade(self, text: str) -> float:
        import torch

        ids, grades = self.context(text)
        device = self.model.device
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids], device=device), use_cache=True)
            first = torch.log_softmax(out.logits[0, -1].double(), dim=-1)
            logprobs = {}
            for g, cont in grades.items():
                lp = first[cont[0]].item()
                if len(cont) > 1:
                    more = self.model(input_ids=torch.tensor([cont[:-1]], device=device),
                                      past_key_values=copy.deepcopy(out.past_key_values), use_cache=True)
                    steps = torch.log_softmax(more.logits[0].double(), dim=-1)
                    lp += sum(steps[k, t].item() for k, t in enumerate(cont[1:]))
                logprobs[g] = lp
        return expected_grade(logprobs, grades)


def judge_label(project: str, ref: str) -> str:
    ref = (ref or "").strip()
    return models.describe(projects.load(project).base_model) if ref == "base" else cands.model_label(ref)


def run(spec: JobSpec, job: JobContext):
    # 1. Parameters and the template, checked before anything slow.
    p: JudgeParams = params_mod.build(JudgeParams, spec.params)
    if not p.judge_model.strip():
        raise ParamError("judge_model: name the judge model (base, run:<id>, or a model path).")
    template = judging_template(spec.project, p.template_file)

    # 2. The session whose groups are judged.
    folder = cands.session_dir(spec.project, p.session)
    session = folder.name
    spec.notes.append(f"Judging the sampling session {session}.")

    # 3. The judge model.
    job.status("Preparing the judge model")
    base = resolve_ref(spec.project, p.judge_model)
    model_folder = models.resolve(base, status=job.status)
    spec.model_path = str(model_folder)
    by = f"judge:{judge_label(spec.project, p.judge_model)}"
    job.status(f"Loading {models.describe(base)}")
    judge = Judge(model_folder, dtype_name(spec.runtime), spec.runtime.device)
    job.check_stop()

    # 4. Grade and rank each group not judged yet by this judge; follow a live sampler.
    job.training = True
    judged = ranking.done_indices(spec.project, session, by=by)
    count = 0
    while not job.stop_requested:
        sampler_alive = liveness.is_alive(folder)
        total = cands.total_prompts(folder)
        todo = [g for i, g in sorted(cands.latest_groups(folder).items()) if i not in judged]
        for group in todo:
            if job.stop_requested or (p.max_groups and count >= p.max_groups):
                break
            started = time.time()
            prompt = render_prompt(group["prompt"])
            scores = [judge.grade(fill(template, prompt, c["text"])) for c in group["candidates"]]
            order, tied = order_by_score(scores)
            ranking.commit(spec.project, ranking.make_record(
                group["prompt"], group["candidates"], order, tied, by=by, session=session,
                index=group["index"], round=group.get("round", 0)))
            judged.add(group["index"])
            count += 1
            job.last_step = count
            goal = p.max_groups or total or count
            job.emit(ev.Log(step=count, total_steps=goal, metrics={
                "seconds_per_group": time.time() - started, "mean_grade": sum(scores) / len(scores)}))
            job.status(f"Judged {count} group(s) of {session}", min(1.0, count / goal))
        if p.max_groups and count >= p.max_groups:
            break
        if total is not None and set(range(total)) <= judged:
            break
        if not sampler_alive and not todo:
            break
        time.sleep(POLL_SECONDS)
    job.training = False
    if count == 0 and not job.stop_requested:
        spec.notes.append("Nothing to judge: every group of the session was already judged by this model.")
    return locations.rankings_file(spec.project)
