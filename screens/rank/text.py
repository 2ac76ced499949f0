"""What the ranking screen says: the prompt, the line under the cards, the progress line, the summary.

Plain functions of what the screen knows (no widgets), so that the words can be read,
and changed, apart from the screen's flow of keys and threads.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.markup import escape

from screens.rank.feed import SamplerState
from screens.rank.state import Ranking, Tally
from workbench.ranking import rankings as ranking
from workbench.terminal import printable


def prompt_text(prompt: Any) -> Text:
    """A prompt as a person reads it: the text, or each message under its role."""
    if isinstance(prompt, str):
        return Text(printable(prompt))
    text = Text()
    for message in prompt or []:
        if text:
            text.append("\n")
        text.append(printable(f"{message.get('role', '?')}: "), style="bold")
        content = message.get("content", "")
        text.append(printable(content))
    return text


def prompt_subtitle(sources: set[str], blind: bool) -> str:
    """Under the prompt: the blind A/B question, or the one model all the answers came from."""
    if blind:
        return "blind A/B: which answer is better?"
    if len(sources) == 1 and "" not in sources:
        return f"answers of {escape(printable(next(iter(sources))))}"
    return ""


def ab_line(rate: ranking.WinRate) -> str:
    """A blind A/B result, the leading model first; ties count half."""
    if rate.rate < 0.5:
        rate = ranking.WinRate(rate.other, rate.model, rate.losses, rate.wins, rate.ties)
    return (f"blind A/B: {rate.model} wins {rate.rate:.0%} against {rate.other} over {rate.games} "
            f"({rate.wins} won, {rate.losses} lost, {rate.ties} tied)")


def key_hint(r: Ranking | None, *, blind: bool, resampling: bool, committing: bool,
             marking: bool | None = None) -> Text:
    """The line under the cards: which key comes next."""
    if marking is not None and r is not None:
        what = "good (+)" if marking else "bad (-)"
        return Text.from_markup(f"mark which answer {what}? press its number (1-{r.size}) · "
                                "[b]esc[/b] or [b]backspace[/b] lets go")
    if resampling:
        return Text("resampling… fresh candidates for this prompt are on their way", style="italic")
    if committing:
        return Text("saving…", style="italic")
    if r is None:
        return Text("")
    if r.complete:
        return Text.from_markup("[b]enter[/b] commits this ranking · [b]backspace[/b] undoes the last key")
    if blind:
        return Text.from_markup("[b]1[/b] or [b]2[/b]: the better answer · [b]t[/b] tie · [b]s[/b] skip")
    if not r.picks:
        return Text.from_markup(f"press the number of the best answer (1-{r.size}), then the next best… · "
                                "[b]t[/b] ties them all · [b]s[/b] skips")
    left = ", ".join(str(i + 1) for i in r.remaining)
    return Text.from_markup(f"next best of {left} · [b]t[/b] ties these · [b]backspace[/b] undoes the last key")


def progress_line(t: Tally, s: SamplerState | None, records: list[dict], scorer_status: str,
                  reward_run: str) -> str:
    """The line above the prompt: counts, the sampler, the reward model, blind A/B so far (no names)."""
    parts = [f"ranked {t.ranked}", f"skipped {t.skipped}"]
    total = s.total if s else None
    parts.append(f"left {max(total - t.ranked - t.skipped, 0)}" if total else "left ?")
    if s is not None and s.total and s.sampled < s.total:
        parts.append(f"sampler {s.sampled}/{s.total}")
    if scorer_status:
        parts.append(scorer_status)
    elif reward_run:
        agreement = "–" if t.agreement is None else f"{t.agreement:.0%} over {len(t.agreements)}"
        parts.append(f"reward model agrees {agreement}")
    rates = list(ranking.ab_win_rates(records).values())
    if rates:
        games = sum(rate.games for rate in rates)
        leader = max(max(rate.rate, 1 - rate.rate) for rate in rates)
        parts.append(f"A/B: {games} compared, the leading model wins {leader:.0%} (named at the end)")
    return printable("  ·  ".join(parts))


def summary(t: Tally, records: list[dict], reward_run: str) -> Text:
    """What a complete session shows: counts, agreement, the blind A/B winners, what to do next."""
    text = Text("Session complete.\n\n", style="bold")
    text.append(f"ranked {t.ranked}, skipped {t.skipped}\n")
    if t.agreement is not None:
        text.append(printable(f"agreement with reward model {reward_run}: {t.agreement:.0%} "
                    f"over {len(t.agreements)} ranking(s)\n"))
    for rate in ranking.ab_win_rates(records).values():
        text.append(printable(ab_line(rate)) + "\n")
    text.append("\nPress d to turn the rankings into the preference dataset 'rankings' (for reward and DPO) and "
                "the answers marked good or bad into 'rankings-labels' (for KTO), j to let a judge model rank "
                "this session, escape to go back.")
    return text
