"""The figures of a run at a glance: state, step, epoch, loss, learning rate, speed, time."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from screens.run_history import RunHistory, duration, finite
from screens.widgets.figures import FigurePanel, bar, figures_table
from workbench.terminal import printable

STATE_STYLES = {
    "starting": "bold yellow", "running": "bold green", "stopping": "bold yellow",
    "completed": "bold blue", "stopped": "bold yellow", "failed": "bold red", "lost": "bold red",
    "stalled": "bold dark_orange",
    "resuming": "bold yellow", "reading": "dim",
}


def _loss(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.4f}" if finite(value) else str(value)


def _rate(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


class RunStats(FigurePanel):
    """Set with `show(...)`; the parent calls it on new events and on its clock."""

    DEFAULT_CSS = """
    RunStats {
        border: round $primary;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("reading the run…", "run", id=id, classes=classes)

    def show(self, history: RunHistory, state: str, alive: bool, message: str = "", peak: str = "") -> None:
        self.update(self.render_stats(history, state, alive, message, peak))

    @staticmethod
    def render_stats(history: RunHistory, state: str, alive: bool, message: str, peak: str = "") -> Group:
        """`peak`: a finished run's peak memory (and its estimate), in the ETA's place."""
        table = figures_table()
        table.add_row("state", Text(state, style=STATE_STYLES.get(state, "bold")))
        total = history.total_steps
        if total:
            done = min(1.0, history.step / total)
            table.add_row("step", Text.assemble(f"{history.step}/{total} ", bar(done, 8, "cyan"), f" {done:.0%}"))
        else:
            table.add_row("step", str(history.step or "–"))
        table.add_row("epoch", "–" if history.epoch is None else f"{history.epoch:.2f}")
        loss = _loss(history.last_loss)
        if history.last_eval_loss is not None:
            loss += f"  (eval {_loss(history.last_eval_loss)})"
        table.add_row("loss", loss)
        table.add_row("lr", "–" if history.lr is None else f"{history.lr:.2e}")
        table.add_row("tokens/s", _rate(history.tokens_per_s))
        table.add_row("elapsed", duration(history.elapsed(alive)))
        if peak:
            table.add_row("peak", peak)
        else:
            table.add_row("ETA", RunStats._eta(history, state))
        age = history.last_log_age()
        if alive and age is not None:
            ago = f"{age:.0f} s ago" if age < 60 else f"{duration(age)} ago"
            table.add_row("last log", Text(ago, style="bold yellow" if age > 60 else ""))
        parts: list = [table]
        if history.warning:
            parts.append(Text(f"⚠ {printable(history.warning)}", style="yellow"))
        if message:
            parts.append(Text(printable(message), style="italic"))
        return Group(*parts)

    @staticmethod
    def _eta(history: RunHistory, state: str) -> str:
        if state in ("completed",):
            return "done"
        if state not in ("running", "stopping"):
            return "–"
        eta = history.eta()
        if eta is None:
            return "estimating…"
        speed = history.steps_per_s or 0.0
        pace = f"{speed:.2f} steps/s" if speed >= 0.1 else f"{1 / speed:.1f} s/step" if speed else ""
        return f"{duration(eta)}  ({pace})" if pace else duration(eta)
