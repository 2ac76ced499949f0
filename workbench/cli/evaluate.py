"""The evaluation subcommands of `workbench`: `eval`, `compare` and `report`. Light: no torch.

`eval` starts an evaluation job (`workbench.evaluate.job`) and, as people expect of a command
that answers "how good is it?", follows it in the foreground by default: progress lines, then the
table (base, few-shot baseline, run; one row per metric, the forgetting watch among them). Ctrl-C
stops it. `--detach` prints the job's id and returns; `workbench runs` lists it, `workbench stop`
stops it, and running the same `eval` again reattaches to it while it runs (or, once it ended,
prints the table; subjects whose results are up to date are not taken again).
"""

from __future__ import annotations

import sys
from pathlib import Path

from workbench.evaluate import compare, results
from workbench.evaluate import job as eval_job
from workbench.evaluate import report
from workbench.params import parse_assignments
from workbench.rewards.library import LIBRARY
from workbench.terminal import for_stream


def _status(message: str) -> None:
    print(for_stream(message, sys.stdout), flush=True)


def cmd_eval(args) -> None:
    options = dict(run_id=args.run or "", few_shot=args.few_shot, metrics=args.metric or [],
                   options=parse_assignments(args.set or []), reward_model=args.reward_model or "",
                   max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, limit=args.limit,
                   judge_model=args.judge or "", judge_template=args.judge_template or "",
                   datasets=args.dataset or [], lm_eval=args.lm_eval or [])
    already = eval_job.running(args.name, args.run or "")
    folder = eval_job.start(args.name, fresh=args.fresh, device=args.device, wait_for_start=True, **options)
    if folder is None:
        print("Every result is up to date (--fresh takes them again).")
    elif args.detach:
        print(folder.name)
        return
    else:
        if already == folder:
            print(f"Following {folder.name}, which was already running.", flush=True)
        else:
            print(folder.name, flush=True)
        eval_job.wait(folder, _status)
    columns = eval_job.columns(args.name, args.run or "", args.few_shot, args.dataset or [])
    print(for_stream(results.render(results.table(columns)), sys.stdout))


def cmd_compare(args) -> None:
    cells = compare.table(args.name, args.sort)
    if args.out is None and not args.markdown:
        print(for_stream(results.render(cells), sys.stdout))
        return
    text = compare.markdown(args.name, cells, args.sort or "")
    if args.out is None:
        print(text, end="")
    else:
        print(compare.write(args.name, text, Path(args.out) if args.out else None))


def cmd_report(args) -> None:
    print(report.write(args.name, args.run, Path(args.out) if args.out else None))


def add_parsers(sub) -> None:
    p = sub.add_parser("eval", help="evaluate the base model (and a run) on the project's eval split, as a job",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("name")
    p.add_argument("run", nargs="?", help="a training run's id (default: the base model alone)")
    p.add_argument("--few-shot", type=int, default=0, metavar="K",
                   help="also score the base with K examples of the train split in its prompt")
    p.add_argument("--metric", action="append", metavar="NAME",
                   help=f"a metric (repeatable): exact_match, fields, or a reward of the library "
                        f"({', '.join(LIBRARY)}); default: chosen from the records")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a reward option for the library metrics, e.g. regex=^Answer: or answer_column=answer")
    p.add_argument("--reward-model", metavar="REF", help="also score the answers with this reward model (a run id)")
    p.add_argument("--judge", metavar="REF", help="a judge model grades the run's answers against the base's "
                                                  "(base, run:<id> or a path): its win rate")
    p.add_argument("--judge-template", metavar="FILE", help="the judge's prompt, with {prompt} and {answer} "
                                                            "(default: the project's judge template)")
    p.add_argument("--max-new-tokens", type=int, default=0, help="answer length limit (default: from the references)")
    p.add_argument("--batch-size", type=int, default=eval_job.BATCH_SIZE)
    p.add_argument("--limit", type=int, help="score only the first N eval records")
    p.add_argument("--dataset", action="append", metavar="NAME",
                   help="evaluate on this dataset of the project (any split; repeat for several) instead of its "
                        "eval split; results are kept apart from the eval split's")
    p.add_argument("--lm-eval", action="append", metavar="TASK",
                   help="also run this task of the LM Evaluation Harness (optional package lm-eval; repeatable): a "
                        "task defined in the project's lm-eval/ folder, a task YAML file, or one of the harness's own")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--fresh", action="store_true", help="take every result again, even those up to date")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--wait", action="store_true", help="follow the job and print its table (the default)")
    how.add_argument("--detach", action="store_true", help="print the job's id and return while it runs")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("compare", help="a project's runs side by side: method, parameters, losses, metrics")
    p.add_argument("name")
    p.add_argument("--sort", metavar="COLUMN", help="order by this column (its header): best first")
    p.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    p.add_argument("--out", nargs="?", const="", metavar="FILE.md",
                   help="write it in Markdown to this file (alone: compare.md in the project folder)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("report", help="write a run's report in Markdown: curves, metrics vs base, generations")
    p.add_argument("name")
    p.add_argument("run")
    p.add_argument("--out", metavar="FILE.md", help="where to write it (default: the run's evaluations/report.md)")
    p.set_defaults(func=cmd_report)
