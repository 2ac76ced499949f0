"""The data report and a rendered record as plain text for the terminal (where the record's control
characters are shown as marks, `workbench.terminal.printable`)."""

from __future__ import annotations

from workbench.data.stats import text_histogram
from workbench.terminal import printable

LOSS_ON, LOSS_OFF = "\x1b[1;32m", "\x1b[0m"  # bold green: the tokens that carry loss
MARK_OPEN, MARK_CLOSE = "\u00ab", "\u00bb"  # «...» when colour is off


def _tokens_line(t: dict) -> str:
    if not t.get("records"):
        return "no records to tokenise"
    return (f"{t['records']} record(s): min {t['min']}, median {t['median']:g}, p95 {t['p95']:g}, "
            f"max {t['max']} tokens; {t['truncated']} longer than max_length={t['max_length']}")


def format_report(report: dict) -> str:
    lines = [f"Project '{report['project']}'", "", "Datasets:"]
    for d in report["datasets"]:
        lines.append(f"  {d['name']}\t{d['split']}\t{d['kind']}\t{d['records']} record(s)")
    if not report["datasets"]:
        lines.append("  none yet: import a file first")
    kinds = ", ".join(f"{n} {k}" for k, n in report["kinds"].items()) or "none"
    lines += ["", f"Kinds: {kinds}", "", f"Tokens: {_tokens_line(report['tokens'])}"]
    lines += ["  " + line for line in text_histogram(report["tokens"]["histogram"])]
    if len(report["datasets"]) > 1:
        for d in report["datasets"]:
            lines.append(f"  {d['name']}: {_tokens_line(d['tokens'])}")
    checks = report["preflight"]
    lines += ["", "Preflight: " + ("ready to train" if not checks["errors"] else "training would be refused")]
    lines += [f"  error: {e}" for e in checks["errors"]]
    lines += [f"  warning: {w}" for w in checks["warnings"]]
    return "\n".join(lines)


def mark(segments: list[dict], colour: bool) -> str:
    """The text with its loss-carrying runs coloured (tty, its control characters shown as marks) or
    wrapped in «...» (the text as it is)."""
    opening, closing = (LOSS_ON, LOSS_OFF) if colour else (MARK_OPEN, MARK_CLOSE)
    shown = printable if colour else str
    return "".join(f"{opening}{shown(s['text'])}{closing}" if s["loss"] else shown(s["text"]) for s in segments)


def format_show(shown: dict, colour: bool) -> str:
    legend = "green" if colour else f"{MARK_OPEN}...{MARK_CLOSE}"
    cut = f"; truncated to max_length={shown['max_length']}" if shown["truncated"] else ""
    head = (f"Record {shown['index']} of '{shown['dataset']}' ({shown['kind']}): {shown['tokens']} tokens, "
            f"{shown['loss_tokens']} carry loss ({legend}){cut}")
    return head + "\n\n" + mark(shown["segments"], colour)
