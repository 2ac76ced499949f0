"""Trainable parameters and memory of each training mode, for the values in the method form.

The numbers come from `workbench estimate --json` run in a child process (building even a
meta-device model needs torch, which the UI never imports). A request waits for a short
quiet time, so typing a batch size starts one child, not one per key; an answer that a newer
request has overtaken is dropped.
"""

from __future__ import annotations

import json
import subprocess
import sys

from rich.markup import escape
from textual import work
from textual.timer import Timer
from textual.widgets import Static
from textual.worker import get_current_worker

GIB = 1024 ** 3
# The parts of the chosen mode's memory (`workbench.registry.estimate.PARTS`), as the panel names them.
PART_NAMES = {"weights": "weights", "gradients": "grads", "optimizer": "AdamW", "activations": "activations",
              "reference": "frozen models", "generation": "sampling", "runtime": "runtime"}
TITLE = "[b]Trainable parameters and memory[/b]"


def human(count: int) -> str:
    """1234 -> 1.2K, 4884480 -> 4.88M: parameter counts at a glance."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= size:
            value = count / size
            return f"{value:.3g}{suffix}"
    return str(count)


def size(count: int) -> str:
    return f"{count / GIB:.2f} GiB" if count >= GIB else f"{count / 1024 ** 2:.0f} MiB"


def percent(part: int, whole: int) -> str:
    share = 100 * part / whole if whole else 0.0
    return f"{share:.1f}%" if share >= 0.1 or share == 0 else "<0.1%"


def render_report(report: dict) -> str:
    """The estimate as markup: one row per mode, the chosen mode marked (leading spaces would be trimmed)."""
    step = report.get("step") or f"batch {report['batch_size']} x {report['max_length']}"
    lines = [f"{escape(report['model'])} on {report['device']} {report['precision']}, {escape(step)}",
             f"{'mode':<13}{'trains':>7}{'share':>7}{'memory':>10}"]
    for m in report["modes"]:
        trains, share = human(m["trainable"]), percent(m["trainable"], m["total"])
        row = f"{m['mode']:<11}{trains:>7}{share:>7}{size(m['memory']):>10}"
        lines.append(f"[b]▶ {row}[/b]" if m["mode"] == report["chosen"] else f"· {row}")
    chosen = next((m for m in report["modes"] if m["mode"] == report["chosen"]), {})
    parts = [f"{PART_NAMES[name]} {size(chosen[name])}" for name in PART_NAMES if chosen.get(name)]
    if parts:
        lines.append("▶ = " + " + ".join(parts))
    if report.get("free_bytes") is not None:
        lines.append(f"{report['free_bytes'] / GIB:.1f} GiB {escape(report['where'])}")
    return "\n".join(lines)


def failure_line(stderr: str) -> str:
    """The CLI's one-line error, or the last line the child wrote."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    errors = [line.removeprefix("workbench: error: ") for line in lines if line.startswith("workbench: error:")]
    return (errors or lines or ["the estimate exited without a word"])[-1]


class ModeEstimate(Static):
    """The estimate panel; `request()` asks for fresh numbers."""

    DEFAULT_CSS = """
    ModeEstimate { height: auto; padding: 1 1 0 1; }
    """
    COMMAND: tuple[str, ...] = (sys.executable, "-m", "workbench.cli", "estimate")
    DELAY = 0.6  # seconds of quiet before a child starts

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(TITLE, id=id)
        self._timer: Timer | None = None
        self.report: dict | None = None
        self.asked = 0  # requests so far; each answer names the request it answers
        self.answered = 0

    def request(self, project: str, method: str, values: dict[str, str] | None,
                datasets: list[str] | tuple[str, ...] = ()) -> None:
        """New numbers for these values (and these training datasets; none named: every one the method reads)
        after a quiet time; None when the form has errors."""
        if self._timer is not None:
            self._timer.stop()
        self.asked += 1
        if values is None:
            self.update(f"{TITLE}\nFix the marked fields to see the estimate.")
            return
        asked = self.asked
        self._timer = self.set_timer(self.DELAY, lambda: self.run_child(asked, project, method, values,
                                                                                tuple(datasets)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="estimate", name="Estimating memory")
    def run_child(self, asked: int, project: str, method: str, values: dict[str, str],
                  datasets: tuple[str, ...] = ()) -> None:
        worker = get_current_worker()
        self.app.call_from_thread(self.update, f"{TITLE}\nEstimating…")
        command = [*self.COMMAND, project, "--method", method, "--json"]
        for name in datasets:  # the longest record of these sets the worst batch
            command += ["--dataset", name]
        for key, value in values.items():
            command += ["--set", f"{key}={value}"]
        report, text = None, ""
        try:
            code, out, err = self.run_command(command, worker)
        except (OSError, subprocess.TimeoutExpired) as exc:
            code, out, err = -1, "", str(exc)
        if code is None:
            return  # cancelled: a newer request, or the screen went away
        if code == 0:
            try:
                report = json.loads(out.strip().splitlines()[-1])
                text = render_report(report)
            except (ValueError, IndexError, KeyError, TypeError) as exc:
                text, report = f"No estimate: unreadable answer ({exc}).", None
        else:
            text = f"No estimate: {escape(failure_line(err))}"
        if not worker.is_cancelled:
            self.app.call_from_thread(self.show, asked, report, text)

    @staticmethod
    def run_command(command: list[str], worker, timeout: float = 300) -> tuple[int | None, str, str]:
        """(exit code, stdout, stderr) of the child; code None when the worker was cancelled first
        (the child is killed then, so no estimate outlives the screen that asked for it)."""
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                text=True)
        waited = 0.0
        while True:
            try:
                out, err = proc.communicate(timeout=0.2)
                return proc.returncode, out, err
            except subprocess.TimeoutExpired:
                waited += 0.2
                if worker.is_cancelled or waited > timeout:
                    proc.kill()
                    proc.communicate()
                    if worker.is_cancelled:
                        return None, "", ""
                    raise

    def current(self) -> dict:
        """The chosen mode's memory as the panel shows it for the form's values now, for the run's spec
        (`JobSpec.estimate`): {"bytes", "device", "mode"}; {} while a newer answer is awaited or none came."""
        report = self.report
        if report is None or self.answered != self.asked:  # a request not answered yet: the values changed
            return {}
        chosen = next((m for m in report.get("modes", []) if m.get("mode") == report.get("chosen")), None)
        if not chosen:
            return {}
        return {"bytes": int(chosen["memory"]), "device": str(report.get("device", "")), "mode": chosen["mode"]}

    def show(self, asked: int, report: dict | None, text: str) -> None:
        if asked != self.asked:
            return  # a newer request is on its way
        self.report, self.answered = report, asked
        self.update(f"{TITLE}\n{text}")
