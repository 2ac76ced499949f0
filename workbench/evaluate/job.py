"""An evaluation as a job: started detached, followed through its events, stopped with SIGTERM.

`start` checks everything it can without loading a model (the project, the run, the eval split,
the metrics against the records, the rule rewards' columns, the reward model, the few-shot
pool), then saves the job's spec in a run folder of its own (`runs/<date>-<time>-eval/`, method
`eval`, listed by `workbench runs` like any run) and spawns the worker, which calls `run`.

One job evaluates its subjects in turn (`results.Subject`): the base model, the few-shot
baseline when asked, then the run when one is named. A subject whose results were taken with the
same data and settings is not taken again (unless `fresh`), so the base is evaluated once per
project and an evaluation that was stopped starts again where its finished subjects end. The worker's
side is `runner`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from workbench import project as projects
from workbench import registry
from workbench.evaluate import harness, results
from workbench.evaluate import metrics as mt
from workbench.evaluate.heldout import (
    EvalError, Example, chosen_sources, draw_shots, eval_examples, fingerprint, read_examples, shot_pool, sources,
)
from workbench.evaluate.results import Subject
from workbench.jobs import launch, store
from workbench.jobs.follow import follow as follow_job
from workbench.rewards import load_rewards, reward_options
from workbench.run import events as ev
from workbench.run.spec import JobSpec, Runtime, default_threads

METHOD = "eval"
RUNNER = "workbench.evaluate.runner:run"
BATCH_SIZE = 8
JUDGE = {"judge_model", "judge_template"}  # settings of a run's evaluation only (the judge compares it with the base)


# the starting side: check, start, find, follow -------------------------------------------------------

def plan(project: str, run_id: str = "", few_shot: int = 0, metrics: list[str] | tuple[str, ...] = (),
         options: dict[str, Any] | None = None, reward_model: str = "", max_new_tokens: int = 0,
         batch_size: int = BATCH_SIZE, limit: int | None = None, seed: int = 42, judge_model: str = "",
         judge_template: str = "", datasets: list[str] | tuple[str, ...] = (),
         lm_eval: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """The job's parameters, every input checked (EvalError, RunError, RewardError, ProjectError, one line
    each) before anything is written or loaded."""
    proj = projects.load(project)
    if run_id:
        check_run(project, run_id)
        check_generates(store.get(project, run_id))
    if few_shot < 0 or batch_size < 1 or max_new_tokens < 0 or (limit is not None and limit < 1):
        raise EvalError("--few-shot and --max-new-tokens take 0 or more, --batch-size and --limit 1 or more.")
    named = list(dict.fromkeys(datasets))
    datasets, examples = eval_examples(proj, limit, named)
    references = [e.reference for e in examples]
    opts = reward_options(options)
    chosen = list(dict.fromkeys(metrics)) or mt.choose(references, {k for e in examples for k in e.columns})
    if chosen or not reward_model.strip():  # a reward model alone is a metric too
        try:
            mt.check(chosen, references, opts["answer_column"])
        except mt.MetricError as exc:
            raise EvalError(str(exc)) from None
    rule = [m for m in chosen if m not in mt.OWN]
    if rule:
        check_rewards(rule, opts, examples[0])
    if reward_model.strip():
        from workbench.rewards.model import reward_model_folder

        reward_model_folder(project, reward_model.strip())
    if judge_model.strip():
        check_judge(project, run_id, judge_model.strip(), judge_template)
    if few_shot:
        draw_shots(shot_pool(proj, examples), few_shot, seed)
    try:
        harness_settings = harness.check(project, list(lm_eval))
    except harness.HarnessError as exc:
        raise EvalError(str(exc)) from None
    return {"run": run_id, "few_shot": few_shot, "metrics": chosen, "options": dict(options or {}),
            "reward_model": reward_model.strip(), "max_new_tokens": max_new_tokens, "batch_size": batch_size,
            "limit": limit or 0, "seed": seed, "datasets": datasets, "judge_model": judge_model.strip(),
            "judge_template": judge_template.strip(), "on": "+".join(named), "lm_eval": harness_settings}


def check_run(project: str, run_id: str) -> None:
    """RunError unless `run_id` is a training run of the project that has ended with weights."""
    info = store.get(project, run_id)
    if not registry.trains(info.method):
        raise store.RunError(registry.not_trained(run_id, info.method, "evaluate"))
    store.trained_weights(project, run_id)


def check_generates(info: store.RunInfo) -> None:
    """RunError when the run's model writes no text (an embedding model): it has no evaluation by generation."""
    if info.method == "embed":
        raise store.RunError(f"Run '{info.id}' is an embedding model (method embed): it writes no text, so it has no "
                             "evaluation by generation; its retrieval measures on the held-out pairs (recall@k, MRR, "
                             "before and after training) are the run's own eval metrics, shown by its monitor.")


def check_judge(project: str, run_id: str, ref: str, template_file: str) -> None:
    """EvalError unless a run is named, the judge model exists and its template has both fields."""
    from workbench.ranking.judge_params import TemplateError, judging_template
    from workbench.run.model_refs import RefError, resolve_ref

    if not run_id:
        raise EvalError("A judge compares a run's answers with the base model's: name the run to judge.")
    try:
        resolve_ref(project, ref)
        judging_template(project, template_file)
    except (RefError, TemplateError) as exc:
        raise EvalError(f"Judge: {exc}") from None


def check_rewards(names: list[str], opts: dict[str, Any], first: Example) -> None:
    """Run the rule rewards once on the first record: a missing column or a bad pattern fails here."""
    from workbench.rewards.setup import check_columns

    rewards = load_rewards(",".join(f"{n}:1" for n in names), options=opts)
    check_columns(rewards, {"prompt": first.prompt, **first.columns})


def subjects(params: dict[str, Any]) -> list[Subject]:
    """What a job with these parameters evaluates, in order."""
    on = params.get("on", "")
    out = [Subject(on=on)]
    if params["few_shot"]:
        out.append(Subject(shots=params["few_shot"], on=on))
    if params["run"]:
        out.append(Subject(run=params["run"], on=on))
    return out


def subject_fingerprint(project: str, params: dict[str, Any], subject: Subject, examples: list[Example]) -> str:
    """What a subject's results depend on: the model, the held-out records, the settings, the forgetting text."""
    from workbench.evaluate.generation import forgetting_text

    if subject.run:
        model = str(store.trained_weights(project, subject.run)[0])
    else:
        model = projects.load(project).base_model
    skip = {"run", "few_shot", "datasets", "todo", "fingerprints"} | (set() if subject.run else JUDGE) | \
        ({"lm_eval"} if subject.shots else set())  # the few-shot baseline runs no lm-eval task
    settings = {k: v for k, v in params.items() if k not in skip}
    return fingerprint(model, subject.shots, settings, [(e.prompt, e.reference, e.columns) for e in examples],
                       forgetting_text())


def start(project: str, run_id: str = "", fresh: bool = False, device: str = "auto", wait_for_start: bool = False,
          **options: Any) -> Path | None:
    """Start evaluating (see `plan` for the options); the job's folder, None when every subject's results
    are up to date. An evaluation of the same run already running is returned instead of a second one."""
    params = plan(project, run_id, **options)
    running_job = running(project, run_id)
    if running_job is not None:
        return running_job
    proj = projects.load(project)
    evaluated = chosen_sources(proj, params["on"].split("+") if params["on"] else ())
    examples = read_examples(evaluated, params["limit"] or None)
    prints = {s.name: subject_fingerprint(project, params, s, examples) for s in subjects(params)}
    todo = [s for s in subjects(params) if fresh or not results.fresh(project, s, prints[s.name])]
    if not todo:
        return None
    params["todo"] = [{"run": s.run, "shots": s.shots, "on": s.on} for s in todo]
    params["fingerprints"] = prints
    job_id = launch.new_run_id(project, METHOD)
    spec = JobSpec(id=job_id, project=project, method=METHOD, base_model=proj.base_model, params=params, train=[],
                   eval=evaluated, runtime=Runtime(device=device, threads=default_threads(), processes=1),
                   base_ref=f"run:{run_id}" if run_id else "base", runner=RUNNER)
    if params["few_shot"]:
        spec.train = sources(proj, "train")
    return launch.start(spec, wait_for_start=wait_for_start)


def jobs(project: str) -> list[store.RunInfo]:
    """The project's evaluation jobs, oldest first."""
    return [info for info in store.list_runs(project) if info.method == METHOD]


def running(project: str, run_id: str = "") -> Path | None:
    """The folder of the evaluation of `run_id` (of the base alone when empty) that is running, if any."""
    for info in reversed(jobs(project)):
        if info.alive and JobSpec.load(info.path).params.get("run", "") == run_id:
            return info.path
    return None


def follow(folder: Path, poll: float = 0.2, cancelled=lambda: False) -> Iterator[ev.Event]:
    return follow_job(folder, "The evaluation", poll, cancelled)


def describe(event: ev.Event) -> str | None:
    """The progress line of an event, for a person; None for the events that have none."""
    if isinstance(event, ev.Status):
        return event.message
    if isinstance(event, ev.Artifact):
        return f"{event.verification} ({event.path})"
    return None


def wait(folder: Path, status=print) -> None:
    """Follow the evaluation in the foreground, its progress lines to `status`; its error raised. An
    interrupt (Ctrl-C) stops it, then is raised once it has ended."""
    try:
        for event in follow(folder):
            line = describe(event)
            if line:
                status(line)
            if isinstance(event, ev.Error):
                raise EvalError(event.message)
            if isinstance(event, ev.Finished):
                if event.reason != "completed":
                    raise EvalError(f"The evaluation {Path(folder).name} was stopped; the subjects it finished "
                                    "keep their results, and the same command takes up the rest.")
                return
    except KeyboardInterrupt:
        try:
            store.stop_job(Path(folder), f"Evaluation {Path(folder).name}")
        except store.RunError:
            pass
        for _ in follow(folder):
            pass
        raise


def columns(project: str, run_id: str = "", few_shot: int = 0,
            datasets: list[str] | tuple[str, ...] = ()) -> list[tuple[str, dict[str, Any] | None]]:
    """(subject name, its results) for the table: the base, the few-shot baseline, the run."""
    chosen = subjects({"few_shot": few_shot, "run": run_id, "on": "+".join(dict.fromkeys(datasets))})
    return [(s.name, results.read(project, s)) for s in chosen]
