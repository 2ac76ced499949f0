"""The `chat` subcommand: one message to one or two models, each answer printed under its model's name.

Each model is answered by its playground server (`workbench.serve`): one already warm is used and left
running; one this command starts ends with it, unless `--keep` leaves it warm for the next call.
"""

from __future__ import annotations

import sys


def cmd_chat(args) -> None:
    from workbench import project as projects
    from workbench.params import parse_assignments
    from workbench.serve import launch
    from workbench.serve.params import chat_params
    from workbench.terminal import for_stream

    projects.load(args.name)
    params = chat_params(parse_assignments(args.set or []))
    if len(args.model) > 2:
        raise ValueError("Give one or two models (--model REF, at most twice).")
    targets = [launch.prepare(args.name, ref) for ref in args.model]  # every name checked before anything loads
    messages = [{"role": "user", "content": args.message}]
    handles = []
    try:
        for target in targets:
            handles.append(launch.start(args.name, target.ref, idle_minutes=args.idle_minutes,
                                        status=lambda message: print(message, file=sys.stderr, flush=True)))
        for handle in handles:
            with handle.connect() as client:
                print(f"== {handle.target.ref} ({client.label}, {client.hello.get('backend')}) ==", flush=True)
                done = client.ask(messages, params,
                                  on_text=lambda text: print(for_stream(text, sys.stdout), end="", flush=True))
            print()
            first = done.get("first_token_s")
            speed = done.get("tokens_per_s")
            print(f"({done['tokens']} tokens, {done['reason']}"
                  f"{f', first token {first:.2f} s' if first is not None else ''}"
                  f"{f', {speed:.1f} tokens/s' if speed else ''})", file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            for handle in handles:
                if handle.proc is not None:  # started here
                    launch.end(handle.folder)


def add_parsers(sub) -> None:
    p = sub.add_parser("chat", help="send a message to one or two models and print their answers")
    p.add_argument("name")
    p.add_argument("--model", action="append", required=True, metavar="REF",
                   help="base, run:<id>, run:<id>/checkpoint-N, or a path (a .gguf file is served by llama.cpp); "
                        "give it twice to compare two models")
    p.add_argument("--message", required=True, help="what the user says")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="system, temperature, top_p, max_new_tokens or seed (repeatable)")
    p.add_argument("--keep", action="store_true", help="leave the servers this command starts warm")
    p.add_argument("--idle-minutes", type=float, default=15.0, metavar="N",
                   help="a server left warm ends after N minutes with no request (default 15)")
    p.set_defaults(func=cmd_chat)
