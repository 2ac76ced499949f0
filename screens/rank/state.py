"""What a person has decided about one group of candidates, before it is committed.

Kept apart from the screen so that the rules (each card once, backspace undoes the last
decision, the last card left needs no key) are plain code, tested without a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Ranking:
    """Picks best first, then optionally the rest tied at the end."""

    size: int
    picks: list[int] = field(default_factory=list)
    tied: list[int] = field(default_factory=list)

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
        return True

    def tie_rest(self) -> bool:
        """Every card not picked yet shares the last place; False when fewer than two are left."""
        rest = self.remaining
        if len(rest) < 2:
            return False
        self.tied = rest
        return True

    def undo(self) -> bool:
        """Take back the last decision: the tie if there is one, else the last pick."""
        if self.tied:
            self.tied = []
            return True
        if self.picks:
            self.picks.pop()
            return True
        return False

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


@dataclass
class Tally:
    """The person's progress through a session, counted from the rankings file and this visit."""

    ranked: int = 0
    skipped: int = 0
    agreements: list[float] = field(default_factory=list)

    @property
    def agreement(self) -> float | None:
        return sum(self.agreements) / len(self.agreements) if self.agreements else None
