"""The method subcommands of `workbench`: `estimate` (trainable parameters and memory per mode)."""

from __future__ import annotations

import json


def cmd_estimate(args) -> None:
    from workbench.params import parse_assignments
    from workbench.registry.estimate import describe, estimate

    report = estimate(args.name, args.method, parse_assignments(args.set or []), device=args.device,
                      datasets=args.dataset)
    print(json.dumps(report) if args.json else describe(report))


def add_parsers(sub) -> None:
    p = sub.add_parser("estimate", help="trainable parameters and memory of each training mode, before a run")
    p.add_argument("name")
    p.add_argument("--method", default="sft")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a method parameter (repeatable)")
    p.add_argument("--dataset", action="append", metavar="NAME",
                   help="a training dataset the run will read (repeatable; default: every one of the method's kinds)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="estimate for this device (default: this machine's)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_estimate)
