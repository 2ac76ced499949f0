"""The data subcommands of `workbench`: `data` (report, or one record rendered) and `split`."""

from __future__ import annotations

import json
import sys

from workbench.terminal import for_stream


def cmd_data(args) -> None:
    from workbench import project as projects
    from workbench.data import report, report_text
    from workbench.methods.sft_params import project_settings

    settings = project_settings(projects.load(args.name), args.max_length)
    if args.show is not None:
        shown = report.show_record(args.name, args.show, settings, dataset=args.dataset)
        print(json.dumps(shown, ensure_ascii=False) if args.json else
              report_text.format_show(shown, colour=sys.stdout.isatty()))  # marks control characters on a tty
        return
    built = report.build_report(args.name, settings, dataset=args.dataset)
    print(json.dumps(built, ensure_ascii=False) if args.json else for_stream(report_text.format_report(built), sys.stdout))


def cmd_split(args) -> None:
    from workbench.data.splits import split

    print(for_stream(split(args.name, args.dataset, fraction=args.eval_fraction, count=args.eval_count, seed=args.seed),
                     sys.stdout))


def add_parsers(sub) -> None:
    p = sub.add_parser("data", help="report a project's data (kinds, token lengths, preflight), or show a record")
    p.add_argument("name")
    p.add_argument("--dataset", help="only this dataset")
    p.add_argument("--max-length", type=int, help="tokens kept per record (default: the project's SFT setting)")
    p.add_argument("--show", type=int, metavar="N",
                   help="print record N (0-based) as the model sees it, loss-carrying text marked")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("split", help="hold out a seeded part of a dataset as DATASET-eval (split eval)")
    p.add_argument("name")
    p.add_argument("dataset")
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--eval-fraction", type=float, metavar="F", help="share of the records to hold out")
    size.add_argument("--eval-count", type=int, metavar="N", help="number of records to hold out")
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=cmd_split)
