"""The export subcommands of `workbench`: `export` (a run) and `export-base` (the project's base model).

Each starts an export job (`workbench.export.job`) and follows it in the foreground, printing its
progress and, last, the output folder; Ctrl-C stops it.
"""

from __future__ import annotations

from workbench.export import job as export_job


def _status(message: str) -> None:
    print(message, flush=True)


def _quants(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _export(args, run_id: str) -> None:
    folder = export_job.start(args.name, run_id, args.format, args.out or None, _quants(args.quant), args.outtype,
                              chat_check=not args.no_chat_check, force=args.force)
    print(export_job.wait(folder, _status))


def cmd_export(args) -> None:
    _export(args, args.run)


def cmd_export_base(args) -> None:
    _export(args, "")


def _gguf_options(p) -> None:
    p.add_argument("--quant", default="Q4_K_M", metavar="LIST",
                   help="GGUF quant types, comma-separated (e.g. Q4_K_M,Q8_0); every llama.cpp LLAMA_FTYPE name works")
    p.add_argument("--outtype", choices=("f16", "bf16"), default="f16", help="type of the unquantized GGUF")
    p.add_argument("--out", help="output folder (new, empty, or holding an earlier export that --force replaces)")
    p.add_argument("--force", action="store_true",
                   help="replace an earlier export in the output folder, complete or half-made (never other files)")
    p.add_argument("--no-chat-check", action="store_true",
                   help="report, but do not require, that chats end on their own (for models not trained to chat)")


def add_parsers(sub) -> None:
    p = sub.add_parser("export", help="export a run: LoRA adapter, merged model, GGUF, or GGUF LoRA")
    p.add_argument("name")
    p.add_argument("run")
    p.add_argument("--format", choices=export_job.FORMATS, required=True)
    _gguf_options(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("export-base", help="export the project's base model as GGUF files")
    p.add_argument("name")
    p.add_argument("--format", choices=("gguf",), default="gguf")
    _gguf_options(p)
    p.set_defaults(func=cmd_export_base)
