"""The outputs of a run, one step a page: each completion with its reward functions' scores.

RL samples show the total reward, the advantage and each function's (weighted) score; a
function that raised shows ✖ on the outputs it failed on and its message once, above, with
their count. A preference pair shows the chosen and the rejected answer with their log-ratios;
a supervised sample its answer beside the reference. Every string from the run goes through
`printable`: a model's output may hold any control character.
"""

from __future__ import annotations

import math

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from screens.run_samples import FILTERS, FunctionError, RunSamples, errors_of, picked, rank_value
from workbench.run import events as ev
from workbench.terminal import printable

SHORT_LINES = 6  # lines of a completion shown until the full text is asked for
SHORT_CHARS = 600
PROMPT_LINES = 3
PROMPT_CHARS = 300
ERROR_LINES = 2
ERROR_CHARS = 240


def clipped(text: str, full: bool, lines: int = SHORT_LINES, chars: int = SHORT_CHARS) -> tuple[str, int]:
    """The text to show (printable) and how many of its lines were left out."""
    text = printable(text)
    if full:
        return text, 0
    rows = text.split("\n")
    shown = "\n".join(rows[:lines])
    if len(shown) > chars:
        shown = shown[:chars - 1] + "…"
    return shown, max(0, len(rows) - lines)


def is_cut(text: str, lines: int = SHORT_LINES, chars: int = SHORT_CHARS) -> bool:
    shown, hidden = clipped(text, False, lines, chars)
    return bool(hidden) or shown != printable(text)


def signed(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:+.3g}" if math.isfinite(value) else str(value)


def plain(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3g}" if math.isfinite(value) else str(value)


def body_text(text: str, full: bool, style: str = "") -> Padding:
    """A completion indented under its heading (wrapped lines too), with a note of what was left out."""
    shown, hidden = clipped(text, full)
    out = Text(shown, style=style) if shown.strip() else Text("(empty)", style="dim italic")
    if hidden:
        out.append(f"\n… {hidden} more line{'s' if hidden > 1 else ''} (x: full text)", style="dim")
    return Padding(out, (0, 0, 1, 2))


def score_line(sample: ev.Sample, number: int) -> Text:
    """`#n  reward 1.5  adv +0.8  │ format 1  length 0.5  exact ✖`."""
    line = Text(f"#{number} ", style="bold")
    if sample.reward is not None:
        line.append("reward ", style="dim").append(plain(sample.reward), style="bold")
    if sample.advantage is not None:
        line.append("  adv ", style="dim").append(signed(sample.advantage))
    names = list(sample.scores) + [name for name in sample.errors if name not in sample.scores]
    if names:
        line.append("  │ ", style="dim")
        for i, name in enumerate(names):
            line.append(("  " if i else "") + printable(name) + " ", style="dim")
            if name in sample.errors:
                line.append("✖", style="bold red")
            else:
                line.append(plain(sample.scores[name]))
    if sample.reward is None and not names:
        line.append("answer", style="dim")
    return line


def sample_card(sample: ev.Sample, number: int, full: bool = False) -> RenderableType:
    """One output as the panel shows it (and the dry run may): scores, then the text."""
    if sample.rejected or sample.chosen_logratio is not None:
        margin = None
        if sample.chosen_logratio is not None and sample.rejected_logratio is not None:
            margin = sample.chosen_logratio - sample.rejected_logratio
        head = Text.assemble((f"#{number} ", "bold"), ("chosen", "bold green"), ("  log-ratio ", "dim"),
                             signed(sample.chosen_logratio))
        if margin is not None:
            head.append("  margin ", style="dim").append(signed(margin), style="bold")
        rejected = Text.assemble(("   rejected", "bold red"), ("  log-ratio ", "dim"), signed(sample.rejected_logratio))
        return Group(head, body_text(sample.completion, full), rejected, body_text(sample.rejected, full))
    parts: list[RenderableType] = [score_line(sample, number), body_text(sample.completion, full)]
    if sample.reference:
        parts += [Text("   reference", style="dim bold"), body_text(sample.reference, full, style="dim")]
    return Group(*parts)


def prompt_block(prompt: str, full: bool) -> Text:
    shown, hidden = clipped(prompt, full, lines=PROMPT_LINES, chars=PROMPT_CHARS)
    text = Text("prompt  ", style="dim")
    text.append(shown.replace("\n", " ⏎ ") if not full else shown, style="bold cyan")
    if hidden:
        text.append(f"  (+{hidden} lines)", style="dim")
    return text


def error_lines(errors: list[FunctionError], total: int) -> list[Text]:
    lines = []
    for error in errors:
        others = f" ({error.messages - 1} other message{'s' if error.messages > 2 else ''})" \
            if error.messages > 1 else ""
        message, _ = clipped(error.message, False, ERROR_LINES, ERROR_CHARS)  # a traceback's head
        lines.append(Text.assemble(("✖ ", "bold red"), (printable(error.function), "bold"),
                                   f" failed on {error.count} of {total}: ", (message, "red"), (others, "dim")))
    return lines


class SamplesPanel(Vertical):
    """Set the data with `show(samples)`; page with `page(±1)`, filter with `set_filter(how)`.

    It follows the newest step until the person pages back, and stays there."""

    DEFAULT_CSS = """
    SamplesPanel { height: 1fr; }
    SamplesPanel #samples-head { height: auto; padding: 0 1; background: $boost; }
    SamplesPanel #samples-scroll { height: 1fr; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.samples = RunSamples()
        self.step: int | None = None  # the page shown; None: the newest
        self.filter = "all"
        self.full = False
        self.cut = False  # whether the page leaves some text out (x shows it)
        self._seen: tuple | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="samples-head")
        with VerticalScroll(id="samples-scroll"):
            yield Static(id="samples-body")

    def on_mount(self) -> None:
        self._render_page()

    @property
    def current(self) -> int | None:
        """The step on the page: the one chosen, or the newest."""
        steps = self.samples.steps()
        if not steps:
            return None
        return self.step if self.step in self.samples.by_step else steps[-1]

    def show(self, samples: RunSamples) -> None:
        self.samples = samples
        self._render_page()

    def page(self, delta: int) -> None:
        steps = self.samples.steps()
        if not steps:
            return
        at = steps.index(self.current) + delta
        at = min(len(steps) - 1, max(0, at))
        self.step = None if at == len(steps) - 1 else steps[at]  # the newest page follows new steps
        self.query_one("#samples-scroll").scroll_home(animate=False)
        self._render_page()

    def set_filter(self, how: str) -> None:
        if how not in FILTERS:
            raise ValueError(f"no such filter: {how}")
        self.filter = "all" if how == self.filter else how  # the same key again shows all
        self.query_one("#samples-scroll").scroll_home(animate=False)
        self._render_page()

    def toggle_full(self) -> None:
        self.full = not self.full
        self._render_page()

    def _render_page(self) -> None:
        if not self.is_mounted:
            return
        step = self.current
        key = (self.samples.version, step, self.filter, self.full)
        if key == self._seen:
            return
        self._seen = key
        head, body = self.render_page(step)
        self.query_one("#samples-head", Static).update(head)
        self.query_one("#samples-body", Static).update(body)

    def render_page(self, step: int | None) -> tuple[RenderableType, RenderableType]:
        if step is None:
            self.cut = False
            return (Text("no samples yet", style="italic"),
                    Text("The worker writes the outputs of a few prompts every few steps; they appear here.",
                         style="dim"))
        steps = self.samples.steps()
        everything = self.samples.at(step)
        shown = picked(everything, self.filter)
        page = f"  page {steps.index(step) + 1}/{len(steps)}"
        head = Text.assemble(("step ", "dim"), (str(step), "bold"), (page, "dim"), ("  ·  ", "dim"),
                             self._filter_note(shown, everything))
        errors = errors_of(everything)
        header: list[RenderableType] = [head, *error_lines(errors, len(everything))]
        self.cut = not self.full and any(
            is_cut(sample.prompt, PROMPT_LINES, PROMPT_CHARS)
            or any(is_cut(text) for text in (sample.completion, sample.rejected, sample.reference))
            for sample in shown)
        if not shown:
            return Group(*header), Text("No output of this step has a score to rank by.", style="italic")
        return Group(*header), Group(*self._cards(everything, shown))

    def _filter_note(self, shown: list[ev.Sample], everything: list[ev.Sample]) -> Text:
        total = len(everything)
        if self.filter == "all":
            return Text(f"{total} output{'s' if total != 1 else ''}")
        note = Text.assemble((f"{self.filter} {len(shown)}", "bold yellow"), f" of {total}")
        values = {rank_value(sample) for sample in everything} - {None}
        if len(values) == 1 and total > 1:
            note.append("  (all scored alike: no worst or best)", style="dim")
        return note

    def _cards(self, everything: list[ev.Sample], shown: list[ev.Sample]) -> list[RenderableType]:
        """The outputs under their prompts; a prompt is repeated only where it changes."""
        numbers = {id(sample): i + 1 for i, sample in enumerate(everything)}
        if self.filter == "all":  # each prompt's outputs together, prompts in the order they came
            order: dict[tuple, int] = {}
            for sample in shown:
                order.setdefault((sample.group, sample.prompt), len(order))
            shown = sorted(shown, key=lambda s: order[(s.group, s.prompt)])
        parts: list[RenderableType] = []
        last_prompt: tuple | None = None
        for sample in shown:
            prompt_key = (sample.group, sample.prompt)
            if prompt_key != last_prompt:
                if parts:
                    parts.append(Text(""))
                parts.append(prompt_block(sample.prompt, self.full))
                last_prompt = prompt_key
            parts.append(sample_card(sample, numbers[id(sample)], self.full))
        return parts
