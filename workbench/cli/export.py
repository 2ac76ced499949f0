"""The export subcommands of `workbench`: `export` (a run) and `export-base` (the project's base model)."""

from __future__ import annotations

from pathlib import Path

FORMATS = ("lora", "merged", "gguf", "gguf-lora")


def _status(message: str) -> None:
    print(message, flush=True)


def _quants(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def cmd_export(args) -> None:
    out = Path(args.out) if args.out else None
    if args.format in ("gguf", "gguf-lora"):
        from workbench.export.gguf_run import export_run

        out = export_run(args.name, args.run, args.format, _quants(args.quant), args.outtype, out, _status,
                         chat_check=not args.no_chat_check)
    else:
        from workbench.export import export

        out = export(args.name, args.run, args.format, out, status=_status)
    print(out)


def cmd_export_base(args) -> None:
    from workbench.export.gguf_run import export_base

    print(export_base(args.name, _quants(args.quant), args.outtype, Path(args.out) if args.out else None, _status,
                      chat_check=not args.no_chat_check))


def _gguf_options(p) -> None:
    p.add_argument("--quant", default="Q4_K_M", metavar="LIST",
                   help="GGUF quant types, comma-separated (e.g. Q4_K_M,Q8_0); every llama.cpp LLAMA_FTYPE name works")
    p.add_argument("--outtype", choices=("f16", "bf16"), default="f16", help="type of the unquantized GGUF")
    p.add_argument("--out", help="output folder (must be new or empty)")
    p.add_argument("--no-chat-check", action="store_true",
                   help="report, but do not require, that chats end on their own (for models not trained to chat)")


def add_parsers(sub) -> None:
    p = sub.add_parser("export", help="export a run: LoRA adapter, merged model, GGUF, or GGUF LoRA")
    p.add_argument("name")
    p.add_argument("run")
    p.add_argument("--format", choices=FORMATS, required=True)
    _gguf_options(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("export-base", help="export the project's base model as GGUF files")
    p.add_argument("name")
    p.add_argument("--format", choices=("gguf",), default="gguf")
    _gguf_options(p)
    p.set_defaults(func=cmd_export_base)
