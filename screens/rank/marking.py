"""The rank screen's marks of single answers and the datasets a session makes (mixed into `RankScreen`).

`+` / `-` mark one answer good or bad (the focused card, else the card whose number comes next), each mark
appended to the marks log before the card shows it; `d` writes the session's datasets: the preference pairs
(reward, DPO) and the marked answers (KTO).
"""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual import work
from textual.widgets import Static

from screens.widgets.candidate_card import CandidateCard
from workbench.ranking import labels as marks
from workbench.ranking import rankings as ranking
from workbench.terminal import printable


class Marking:
    """Marks and datasets of the rank screen; the screen holds `ranking`, `group`, `marked` and `marking`."""

    async def action_label(self, good: bool) -> None:
        """Mark the focused card good or bad; with no card focused, the card whose number comes next."""
        focused = self.focused
        if isinstance(focused, CandidateCard):
            await self.mark(focused.number - 1, good)
            return
        self.marking = None if self.marking is good else good  # the same key again: no mark after all
        self.show_cards_state()

    async def mark(self, card: int, good: bool) -> None:
        """Mark `card` good or bad (the same mark again takes it off), saved before the next key."""
        r, g = self.ranking, self.group
        if r is None or g is None or not 0 <= card < r.size:
            self.show_cards_state()
            return
        if not g["candidates"][card].get("text", "").strip():
            self.query_one("#hint", Static).update(Text("An empty answer cannot be marked good or bad.",
                                                        style="bold yellow"))
            return
        previous = r.labels.get(card)
        if await self.save_mark(card, None if previous is good else good):  # saved first: made only once saved
            r.label(card, good)
            self.show_cards_state()

    async def save_mark(self, card: int, label: bool | None) -> bool:
        """Append the card's mark (None: taken off) to the marks log off the UI thread; False when it failed."""
        g = self.group
        index, round_ = g["index"], g.get("round", 0)
        candidate = g["candidates"][card]
        record = marks.make_mark(g["prompt"], candidate.get("text", ""), label, self.run_id, index, round_, card,
                                 source=candidate.get("source", ""))
        try:
            await asyncio.to_thread(marks.commit, self.project, record)
        except OSError as exc:
            self.show_cards_state()
            self.query_one("#hint", Static).update(Text(printable(f"The mark was not saved: {exc}"),
                                                        style="bold red"))
            return False
        if label is None:
            self.marked.pop((index, round_, card), None)
        else:
            self.marked[(index, round_, card)] = label
        return True

    def action_dataset(self) -> None:
        self.notify("Writing the rankings datasets…", timeout=2)
        self.write_dataset()

    @work(thread=True, exclusive=True, group="rank.dataset", exit_on_error=False, name="Writing the dataset")
    def write_dataset(self) -> None:
        """The rankings' preference pairs (reward, DPO) and the marked answers (KTO), each dataset when it has
        something; why not, when neither has."""
        try:
            pairs, labelled = marks.refresh_datasets(self.project)
        except ranking.RankingError as exc:
            self.app.call_from_thread(self.notify, printable(str(exc)), severity="warning", markup=False)
            return
        written = []
        if pairs is not None:
            written.append(f"Dataset '{ranking.DATASET}' now holds {pairs} preference pair(s): reward and DPO "
                           "runs can train on it.")
        if labelled is not None:
            written.append(f"Dataset '{marks.DATASET}' now holds {labelled[0]} answer(s) marked good and "
                           f"{labelled[1]} bad: KTO runs can train on it.")
        self.app.call_from_thread(self.notify, printable(" ".join(written)), timeout=8, markup=False)
