"""One record as the model sees it: the templated text, the tokens that carry loss in their own colour
and between marks (⟦learned⟧), so that they stand out without colour too (NO_COLOR, a capture, a reader)."""

from __future__ import annotations

from rich.text import Text

from workbench.terminal import printable

LOSS_STYLE = "bold green"
MASKED_STYLE = "dim"
MARK_STYLE = "bold"
OPEN, CLOSE = "⟦", "⟧"  # around each stretch of learned tokens


def render_segments(segments: list[dict]) -> Text:
    """The templated text; each stretch of tokens that carry loss in LOSS_STYLE between ⟦ ⟧, the masked ones dim."""
    text = Text()
    learning = False
    for segment in segments:
        loss = bool(segment.get("loss"))
        if loss != learning:
            text.append(OPEN if loss else CLOSE, style=MARK_STYLE)
            learning = loss
        text.append(printable(segment.get("text", "")), style=LOSS_STYLE if loss else MASKED_STYLE)
    if learning:
        text.append(CLOSE, style=MARK_STYLE)
    return text


def render_head(payload: dict) -> Text:
    """The line above the render: record, kind, tokens, learned tokens, truncation, and the legend."""
    head = Text()
    head.append(printable(f"record {payload.get('index')}"), style="bold")
    head.append(printable(f"  ·  {payload.get('kind', '')}  ·  {payload.get('tokens', '?')} tokens  ·  "))
    head.append(printable(f"{payload.get('loss_tokens', '?')} learned"), style=LOSS_STYLE)
    if payload.get("truncated"):
        head.append("  ·  truncated", style="bold yellow")
    head.append("\n")
    head.append(OPEN, style=MARK_STYLE)
    head.append("learned (loss)", style=LOSS_STYLE)
    head.append(CLOSE, style=MARK_STYLE)
    head.append("  ")
    head.append("masked (prompt, system)", style=MASKED_STYLE)
    return head
