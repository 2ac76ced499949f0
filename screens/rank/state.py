"""What a person has decided about one group of candidates, before it is committed.

Kept apart from the screen so that the rules (each card once, backspace undoes the last
decision, the last card left needs no key, a second mark of the same kind takes a mark off) are
plain code, tested without a terminal. A card's good or bad mark is saved as it is made
(`workbench.ranking.labels`), so it is a decision that backspace takes back like a pick.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Ranking:
    """Picks best first, then optionally the rest tied at the end; cards marked good or bad on the way."""

    size: int
    picks: list[int] = field(default_factory=list)
    tied: list[int] = field(default_factory=list)
    labels: dict[int, bool] = field(default_factory=dict)  # card -> good (True) or bad (False)
    history: list[tuple] = field(default_factory=list)  # the decisions in the order made, for undo

    @property
    def remaining(self) -> list[int]:
        decided = set(self.picks) | set(self.tied)
        return [i for i in range(self.size) if i not in decided]

    @property
    def complete(self) -> bool:
        """Every card placed; a single card left is last by elimination."""
        return len(self.remaining) <= 1

    def pick(self, index: int) -> bool:
        """Put card `index` next in the order; False when it is already placed or out of range."""
        if not 0 <= index < self.size or index not in self.remaining:
            return False
        self.picks.append(index)
        self.history.append(("pick", index))
        return True

    def tie_rest(self) -> bool:
        """Every card not picked yet shares the last place; False when fewer than two are left."""
        rest = self.remaining
        if len(rest) < 2:
            return False
        self.tied = rest
        self.history.append(("tie",))
        return True

    def label(self, index: int, good: bool) -> bool | None:
        """Mark card `index` good or bad; the same mark again takes it off. Its mark now (None: none)."""
        previous = self.labels.get(index)
        now = None if previous is good else good
        self._set_label(index, now)
        self.history.append(("label", index, previous))
        return now

    def _set_label(self, index: int, value: bool | None) -> None:
        if value is None:
            self.labels.pop(index, None)
        else:
            self.labels[index] = value

    def undo(self) -> tuple | None:
        """Take back the last decision (a tie, a pick or a mark): ("tie",), ("pick", card), or ("label", card,
        its mark now) for a mark given back its earlier state; None when there is nothing to take back."""
        if not self.history:
            return None
        last = self.history.pop()
        if last[0] == "tie":
            self.tied = []
        elif last[0] == "pick":
            self.picks.remove(last[1])
        else:
            self._set_label(last[1], last[2])
        return last

    def final(self) -> tuple[list[int], list[int]]:
        """(ranking, tied) to commit; only valid when `complete`."""
        return self.picks + self.remaining, list(self.tied)

    def badge(self, index: int) -> str:
        """What a card shows of its place: '#2', '=' for tied, '' while undecided."""
        if index in self.picks:
            return f"#{self.picks.index(index) + 1}"
        if index in self.tied:
            return f"= tied #{len(self.picks) + 1}"
        return ""

    def mark(self, index: int) -> str:
        """What a card shows of its mark, readable without colour: '▲ good', '▼ bad' or ''."""
        return {True: "▲ good", False: "▼ bad"}.get(self.labels.get(index), "")


@dataclass
class Tally:
    """The person's progress through a session, counted from the rankings file and this visit."""

    ranked: int = 0
    skipped: int = 0
    agreements: list[float] = field(default_factory=list)

    @property
    def agreement(self) -> float | None:
        return sum(self.agreements) / len(self.agreements) if self.agreements else None
