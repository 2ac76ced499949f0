"""The ranking subcommands of `workbench`: `sample`, `rankings`, `judge` and `score`. Light: no torch."""

from __future__ import annotations

import json
import sys

from workbench import locations
from workbench.params import parse_assignments
from workbench.ranking import candidates
from workbench.ranking import labels as answer_labels
from workbench.ranking import rankings as ranking
from workbench.registry.specs import make_spec
from workbench.terminal import for_stream


class RankCommandError(RuntimeError):
    pass


def _start(project: str, method: str, values: dict, datasets: list[str] | None, wait: bool) -> str:
    from workbench.jobs import launch, store

    spec = make_spec(project, method, values, datasets=datasets)
    launch.start(spec, wait_for_start=True)
    print(spec.id, flush=True)
    if wait:
        info = store.wait(project, spec.id)
        print(f"{info.state}: {info.message}")
        if info.state != "completed":
            raise RankCommandError(f"Run {spec.id} {info.state}: {info.message}")
    return spec.id


def cmd_sample(args) -> None:
    from workbench.ranking.scoring import ScoringError, session_values

    values = parse_assignments(args.set or [])
    if args.order:
        values["order"] = args.order
    try:  # an ordered session samples many groups ahead; a disagree one records its two reward runs
        values = session_values(args.name, values)
    except ScoringError as exc:
        raise RankCommandError(str(exc)) from None
    datasets = list(args.dataset or [])
    if args.prompt:
        datasets.append(candidates.save_typed_prompts(args.name, args.prompt))
    _start(args.name, "sample", values, datasets or None, args.wait)


def cmd_judge(args) -> None:
    from workbench.ranking.judge_params import judging_template
    from workbench.run.spec import JobSpec

    values = parse_assignments(args.set or [])
    if not values.get("judge_model", "").strip():
        raise RankCommandError("Name the judge model: --set judge_model=base|run:<id>|PATH.")
    judging_template(args.name, values.get("template_file", ""))  # a bad template fails here, not in the run
    folder = candidates.session_dir(args.name, values.get("session", ""))
    values["session"] = folder.name
    datasets = [source.dataset for source in JobSpec.load(folder).train]
    _start(args.name, "judge", values, datasets, args.wait)


def cmd_rankings(args) -> None:
    records, problems = ranking.read_log(args.name)
    for problem in problems:
        print(f"Warning: {locations.rankings_file(args.name)}, {problem}; left out",
              file=sys.stderr)
    counts: dict[str, dict[str, int]] = {}
    for record in records:
        row = counts.setdefault(record.get("by", "person"), {"ranked": 0, "skipped": 0, "pairs": 0})
        row["skipped" if record.get("skipped") else "ranked"] += 1
        row["pairs"] += len(ranking.to_pairs(record))
    # marks: (good, bad) answers of the unpaired_label dataset, when any is marked
    dataset_pairs, marks = answer_labels.refresh_datasets(args.name) if args.refresh else (None, None)
    rates = ranking.ab_win_rates(records) if args.ab else {}
    if args.json:
        out = {"by": counts, "records": len(records)}
        if dataset_pairs is not None:
            out["dataset_pairs"] = dataset_pairs
        if marks is not None:
            out["labels"] = {"good": marks[0], "bad": marks[1]}
        if args.ab:
            out["ab"] = [{"model": r.model, "other": r.other, "wins": r.wins, "losses": r.losses, "ties": r.ties,
                          "rate": r.rate} for r in rates.values()]
        print(json.dumps(out))
        return
    if not records:
        print("No rankings yet.")
    for by, row in sorted(counts.items()):
        print(f"{by}\t{row['ranked']} ranked\t{row['skipped']} skipped\t{row['pairs']} pairs")
    if dataset_pairs is not None:
        print(f"Dataset '{ranking.DATASET}' rewritten: {dataset_pairs} preference pairs.")
    if marks is not None:
        print(f"Dataset '{answer_labels.DATASET}' rewritten: {marks[0]} answers marked good, {marks[1]} bad.")
    for rate in rates.values():
        print(f"{rate.model} vs {rate.other}\t{rate.wins}-{rate.losses}-{rate.ties}\t"
              f"{rate.model} wins {rate.rate:.0%} of {rate.games}")
    if args.ab and not rates:
        print("No A/B ranking yet.")


def cmd_score(args) -> None:
    from workbench.ranking.scoring import latest_reward_run, load, score

    run_id = args.run or latest_reward_run(args.name)
    if not run_id:
        raise RankCommandError(f"Project '{args.name}' has no completed reward run to score with.")
    prompt = json.loads(args.prompt) if args.messages else args.prompt
    model, _ = load(args.name, run_id)
    for answer, value in zip(args.answer, score(model, prompt, list(args.answer))):
        print(for_stream(f"{value:.6f}\t{answer}", sys.stdout))


def add_parsers(sub) -> None:
    p = sub.add_parser("sample", help="start a sampling session for ranking; prints its run id")
    p.add_argument("name")
    p.add_argument("--dataset", action="append", help="take prompts from this dataset (repeatable)")
    p.add_argument("--prompt", action="append", metavar="TEXT",
                   help="a prompt typed here; kept in the dataset 'prompts' (repeatable)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a sampling parameter: model, model_b, n, temperature, prompts, ahead... (repeatable)")
    p.add_argument("--order", choices=("session", "uncertain", "disagree"),
                   help="which prompt the ranking screen shows next: session (the sampler's order), uncertain "
                        "(where the newest reward run is least sure) or disagree (where two reward runs disagree "
                        "most: the newest two, or --set reward_runs=ID,ID; the project needs two); the last two "
                        "sample 32 groups ahead to choose from")
    p.add_argument("--wait", action="store_true", help="wait for the session to end")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("rankings", help="count the committed rankings; --refresh rewrites the 'rankings' dataset")
    p.add_argument("name")
    p.add_argument("--refresh", action="store_true", help="rewrite the ranked dataset 'rankings' (and 'rankings-labels' from the answers marked good or bad)")
    p.add_argument("--ab", action="store_true", help="win rates of each model pair from blind A/B rankings")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_rankings)

    p = sub.add_parser("judge", help="let a judge model rank a sampling session; prints its run id")
    p.add_argument("name")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="judge_model=... (required), session=..., template_file=..., max_groups=N")
    p.add_argument("--wait", action="store_true", help="wait for the judge to finish")
    p.set_defaults(func=cmd_judge)

    p = sub.add_parser("score", help="score answers with a reward run (default: the newest completed one)")
    p.add_argument("name")
    p.add_argument("run", nargs="?", help="a reward run id")
    p.add_argument("--prompt", required=True)
    p.add_argument("--answer", action="append", required=True, help="an answer to score (repeatable)")
    p.add_argument("--messages", action="store_true", help="the prompt is a JSON list of chat messages")
    p.set_defaults(func=cmd_score)
