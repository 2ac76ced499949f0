"""`workbench rewards`: a dry run of a method's rewards, before a run spends hours on them.

It samples `--n` completions for the first `--prompts` prompts from a model (the `model`
reference, default the project's base) in this process, scores them with the rewards the
method's parameters name (code in the sandbox, the reward file's functions, a reward model)
and prints a table per prompt. `--completion TEXT` scores that text instead of sampling.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from workbench.terminal import for_stream

EXCERPT = 60


def cmd_rewards(args) -> None:
    from workbench.evaluate.reward_dry_run import dry_run

    values = {}
    if args.set:
        from workbench.params import parse_assignments

        values = parse_assignments(args.set)
    model = values.pop("model", None) or args.model
    report = dry_run(args.name, method=args.method, values=values, datasets=args.dataset or [],
                     model=model, n=args.n, prompts=args.prompts, completion=args.completion, seed=args.seed)
    print(json.dumps(report, ensure_ascii=False) if args.json else for_stream(format_report(report), sys.stdout))


def excerpt(text: str, width: int = EXCERPT) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[:width - 1] + "…"


def format_report(report: dict[str, Any]) -> str:
    """A table per prompt: completion excerpt, each reward's score, the weighted total."""
    names = [r["name"] for r in report["rewards"]]
    weights = ", ".join(f"{r['name']} x{r['weight']:g}" for r in report["rewards"])
    lines = [f"Rewards: {weights} (model: {report['model']})"]
    widths = [max(len(n), 5) for n in names]
    header = ["#", "completion".ljust(EXCERPT), *(n.rjust(w) for n, w in zip(names, widths)), "total"]
    for group in report["prompts"]:
        lines += ["", f"Prompt {group['index']}: {excerpt(group['prompt'], 100)}", "  ".join(header)]
        for i, row in enumerate(group["rows"], start=1):
            cells = [str(i), excerpt(row["completion"]).ljust(EXCERPT)]
            cells += [_score(row["scores"].get(n)).rjust(w) for n, w in zip(names, widths)]
            cells.append(_score(row["total"]).rjust(5))
            lines.append("  ".join(cells))
    lines += [f"Warning: {w}" for w in report["warnings"]]
    return "\n".join(lines)


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def add_parsers(sub) -> None:
    p = sub.add_parser("rewards", help="score sampled (or given) completions with a method's rewards: a dry run")
    p.add_argument("name", help="the project")
    p.add_argument("--method", default="grpo", help="the method whose reward parameters apply (default: grpo)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a method parameter, e.g. rewards=format:1,numeric:2 (repeatable); model=REF picks the model")
    p.add_argument("--dataset", action="append", help="prompts from this dataset (repeatable; default: training sets)")
    p.add_argument("--model", default="base",
                   help="the model that samples: base, run:<id>, run:<id>/checkpoint-N or a path")
    p.add_argument("--n", type=int, default=4, help="completions per prompt (default 4)")
    p.add_argument("--prompts", type=int, default=3, help="how many prompts, from the first (default 3)")
    p.add_argument("--completion", metavar="TEXT", help="score this text for every prompt instead of sampling")
    p.add_argument("--seed", type=int, default=42, help="sampling seed")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=cmd_rewards)
