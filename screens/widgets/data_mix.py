"""Which training datasets a run uses, and how they are mixed: by size, or by a weight each.

The screen asks `read()` when it starts a run and passes the answer to
`workbench.registry.specs.make_spec(..., mix=...)`: "proportional" for every dataset by
size, or {name: weight} (whose names also choose the datasets). A subset mixed by
size is sent as weights proportional to the sizes, the same as the engine computes.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.validation import ValidationResult, Validator
from textual.widgets import Checkbox, Input, Select, Static

from screens.widgets.toggles import MarkedCheckbox

from workbench.data.mixing import PROPORTIONAL, proportional_weights
from workbench.project import DatasetEntry

WEIGHTS = "weights"
MIX_HELP = {PROPORTIONAL: "each dataset weighs its size (plain concatenation)",
            WEIGHTS: "each dataset's share is its weight / the sum of the weights"}


class PositiveWeight(Validator):
    def validate(self, value: str) -> ValidationResult:
        problem = weight_problem(value)
        return self.failure(problem) if problem else self.success()


def weight_of(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 < value < float("inf") else None


def weight_problem(text: str) -> str:
    return "" if weight_of(text) is not None else f"The weight should be a number above 0, not '{text.strip()}'."


class DataMix(Vertical):
    """One row per training dataset (a checkbox and, when weighting, a weight), under a mix choice."""

    DEFAULT_CSS = """
    DataMix { height: auto; padding: 0 1; }
    DataMix .title { text-style: bold; color: $accent; padding: 1 0 0 0; }
    DataMix .row { height: auto; }
    DataMix #mix-row { margin: 1 0; }
    DataMix .row Checkbox { width: 1fr; }
    DataMix #mix-row .name { width: 20; }
    DataMix #mix { width: 20; }
    DataMix #mix-help { width: 1fr; padding-left: 2; color: $text-muted; }
    DataMix .weight { width: 10; }
    DataMix .weight-label { width: auto; padding-right: 1; color: $text-muted; }
    DataMix .error { display: none; height: auto; color: $text-error; }
    DataMix.-proportional .weight, DataMix.-proportional .weight-label { display: none; }
    """

    def __init__(self, datasets: list[DatasetEntry], *, id: str | None = None) -> None:
        super().__init__(id=id, classes=f"-{PROPORTIONAL}")
        self.datasets = datasets

    def compose(self) -> ComposeResult:
        yield Static("Training data", classes="title")
        if len(self.datasets) == 1:
            only = self.datasets[0]
            yield Static(f"{only.name} ({only.records:,} {only.kind})", id="only-dataset", markup=False)
            return
        with Horizontal(id="mix-row", classes="row"):
            yield Static("mix", classes="name")
            yield Select([(PROPORTIONAL, PROPORTIONAL), ("weighted", WEIGHTS)], value=PROPORTIONAL,
                         allow_blank=False, id="mix", compact=True)
            yield Static(MIX_HELP[PROPORTIONAL], id="mix-help")
        for i, entry in enumerate(self.datasets):
            with Horizontal(classes="row"):
                yield MarkedCheckbox(f"{entry.name} ({entry.records:,} {entry.kind})", value=True, id=f"pick-{i}",
                               compact=True)
                yield Static("weight", classes="weight-label")
                yield Input("1", validators=[PositiveWeight()], id=f"weight-{i}", classes="weight", compact=True)
            yield Static(id=f"weight-error-{i}", classes="error", markup=False)
        yield Static(id="mix-error", classes="error", markup=False)

    @property
    def weighted(self) -> bool:
        return len(self.datasets) > 1 and self.query_one("#mix", Select).value == WEIGHTS

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "mix":
            event.stop()
            self.set_class(event.value != WEIGHTS, f"-{PROPORTIONAL}")
            self.query_one("#mix-help", Static).update(MIX_HELP.get(str(event.value), ""))

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id and event.input.id.startswith("weight-") and event.validation_result is not None:
            event.stop()
            failures = event.validation_result.failure_descriptions
            self.show_error(f"weight-error-{event.input.id.removeprefix('weight-')}", failures[0] if failures else "")

    def show_error(self, wid: str, text: str) -> None:
        error = self.query_one(f"#{wid}", Static)
        error.update(text)
        error.display = bool(text)

    def picked(self) -> list[str]:
        """The names of the datasets ticked, when not all are (none: every one)."""
        if len(self.datasets) == 1:
            return []
        names = [d.name for i, d in enumerate(self.datasets) if self.query_one(f"#pick-{i}", Checkbox).value]
        return names if len(names) < len(self.datasets) else []

    def read(self) -> tuple[dict[str, float] | str, str]:
        """(the mix for make_spec, "") or (_, the first problem), showing each problem inline."""
        if len(self.datasets) == 1:
            return PROPORTIONAL, ""
        picked = [(i, d) for i, d in enumerate(self.datasets) if self.query_one(f"#pick-{i}", Checkbox).value]
        problem = "" if picked else "Choose at least one training dataset."
        self.show_error("mix-error", problem)
        if not self.weighted:
            if len(picked) == len(self.datasets):
                return PROPORTIONAL, problem
            return proportional_weights({d.name: d.records for _, d in picked}), problem
        weights: dict[str, float] = {}
        for i, entry in picked:
            text = self.query_one(f"#weight-{i}", Input).value
            weight, error = weight_of(text), weight_problem(text)
            self.show_error(f"weight-error-{i}", error)
            if weight is not None:
                weights[entry.name] = weight
            elif not problem:
                problem = f"{entry.name}: {error}"
                self.query_one(f"#weight-{i}", Input).focus()
        return weights, problem
