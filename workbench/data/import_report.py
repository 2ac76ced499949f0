"""What an import kept and what it did not, each problem where a person finds it ("line 7", "row 3")."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

DUPLICATE_EXAMPLES = 10


@dataclass
class Problem:
    line: int
    reason: str
    unit: str = "line"
    section: str = ""

    @property
    def where(self) -> str:
        return f"{self.unit} {self.line}" + (f" of split '{self.section}'" if self.section else "")


@dataclass
class ImportReport:
    source: str
    dataset: str
    imported: int = 0
    kinds: Counter = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    duplicates: int = 0
    duplicate_examples: list[tuple[str, str]] = field(default_factory=list)  # (where, where it first was)
    duplicates_removed: bool = False
    notes: list[str] = field(default_factory=list)
    omitted_problems: int = 0  # problems left out of a summary read back with from_dict

    def note_duplicate(self, where: str, first: str) -> None:
        self.duplicates += 1
        if len(self.duplicate_examples) < DUPLICATE_EXAMPLES:
            self.duplicate_examples.append((where, first))

    def duplicates_text(self) -> str:
        if not self.duplicates:
            return ""
        done = "removed" if self.duplicates_removed else "kept (remove them with --dedupe)"
        shown = ", ".join(f"{where} repeats {first}" for where, first in self.duplicate_examples)
        more = f", ... and {self.duplicates - len(self.duplicate_examples)} more" \
            if self.duplicates > len(self.duplicate_examples) else ""
        return f"{self.duplicates} duplicate record(s) {done}: {shown}{more}"

    def lines(self, limit: int = 20) -> list[str]:
        kinds_text = ", ".join(f"{n} {k}" for k, n in self.kinds.most_common()) or "none"
        out = [f"{self.source}: imported {self.imported} record(s) into '{self.dataset}' ({kinds_text}); "
               f"{len(self.problems) + self.omitted_problems} problem(s)."]
        out += [f"  note: {note}" for note in self.notes]
        if self.duplicates:
            out.append(f"  {self.duplicates_text()}")
        for p in self.problems[:limit]:
            out.append(f"  {p.where}: {p.reason}")
        more = len(self.problems) + self.omitted_problems - min(limit, len(self.problems))
        if more:
            out.append(f"  ... and {more} more")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def to_dict(self, problem_limit: int = 1000) -> dict:
        """A JSON-ready summary (the first `problem_limit` problems), for a process reading the CLI."""
        data = asdict(self)
        data["kinds"] = dict(self.kinds)
        data["omitted_problems"] = self.omitted_problems + max(0, len(self.problems) - problem_limit)
        data["problems"] = data["problems"][:problem_limit]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "ImportReport":
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["kinds"] = Counter(data.get("kinds", {}))
        fields["problems"] = [Problem(**p) for p in data.get("problems", [])]
        fields["duplicate_examples"] = [tuple(pair) for pair in data.get("duplicate_examples", [])]
        return cls(**fields)
