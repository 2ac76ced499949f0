"""A sweep: one row per run with its grid values, losses and speed, best final eval loss first.

The same screen as a pipeline's (stop, resume, enter opens a run's monitor), with the
comparison table of `workbench sweep NAME report` in place of the stages.
"""

from __future__ import annotations

from textual.widgets import DataTable

from screens.plans.pipeline import PlanScreen, state_text
from workbench.plans import pipelines, sweeps


class SweepScreen(PlanScreen):
    def add_columns(self, table: DataTable) -> None:
        """The grid's parameters are columns too, so they are added once the plan is read."""
        plan = pipelines.load_plan(self.project, self.plan_id)
        header = sweeps.header(list(plan.grid))
        keys = list(plan.grid) + ["state", "steps", "train", "eval", "best", "speed", "run"]
        self.COLUMNS = tuple(zip(header, keys))
        super().add_columns(table)

    def read(self) -> sweeps.Report:
        return sweeps.report(self.project, self.plan_id)

    def info_of(self, found: sweeps.Report) -> pipelines.PlanInfo:
        return found.info

    def rows(self, found: sweeps.Report) -> list[tuple[str, list]]:
        out = []
        for row, cells in zip(found.rows, sweeps.table(found)[1:]):
            state_at = len(found.keys)
            cells[state_at] = state_text(cells[state_at])
            out.append((row.run_id or f"stage-{row.index}", cells))
        return out
