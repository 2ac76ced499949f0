"""Extra sinks for a run's metrics (`report_to`): TensorBoard and Trackio, written inside the run folder.

The event file stays the run's record and the monitor its view; a sink is a copy of the same logs for
a person who reads runs in TensorBoard (`tensorboard --logdir <run>/tensorboard`) or Trackio
(`TRACKIO_DIR=<run>/trackio trackio show`). A trainer-based method hands the names to its trainer
(`report_to`, `trainer_settings`); a method with its own loop (PPO) opens a `Tracker` and logs each
`log` event to it. Either way the files land in `layout.TENSORBOARD` / `layout.TRACKIO` of the run.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from workbench.params import ParamError
from workbench.run import events as ev
from workbench.run import layout

CHOICES = ("none", "tensorboard", "trackio", "tensorboard,trackio")
HELP = ("Also write the training logs for TensorBoard and/or Trackio, inside the run folder "
        "(the monitor shows them either way).")


def sinks(value: str) -> list[str]:
    """The sink names in a `report_to` value ("none": no sink)."""
    names = [n.strip() for n in str(value or "none").split(",") if n.strip() and n.strip() != "none"]
    unknown = [n for n in names if n not in ("tensorboard", "trackio")]
    if unknown:
        raise ParamError(f"report_to: unknown sink {', '.join(unknown)}; choose from {', '.join(CHOICES)}.")
    return names


def missing(name: str) -> str | None:
    """Why sink `name` cannot be written on this machine (a one-line fix), or None when it can."""
    if name == "tensorboard" and not (importlib.util.find_spec("tensorboardX") or importlib.util.find_spec("tensorboard")):
        return "report_to=tensorboard needs tensorboardX (or tensorboard): `pip install tensorboardX`."
    if name == "trackio" and importlib.util.find_spec("trackio") is None:
        return "report_to=trackio needs the trackio package, which is not installed: `pip install trackio`."
    return None


def check(value: str) -> None:
    """Refuse a sink that is unknown or cannot be written here (ParamError), before anything loads."""
    for name in sinks(value):
        if problem := missing(name):
            raise ParamError(problem)


def point_at(run_dir: Path) -> None:
    """Send the sinks' files into the run folder: the trainer's TensorBoard callback reads
    TENSORBOARD_LOGGING_DIR, Trackio reads TRACKIO_DIR when it is first imported. The worker is a
    process of its own for one run, so its environment is the run's."""
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(Path(run_dir) / layout.TENSORBOARD)
    os.environ["TRACKIO_DIR"] = str(Path(run_dir) / layout.TRACKIO)


def trainer_settings(p: Any, project: str, run_dir: Path) -> dict[str, Any]:
    """The transformers TrainingArguments that carry `p.report_to`: its sinks, and the project and
    run names Trackio files the run under (local only: no Space)."""
    names = sinks(getattr(p, "report_to", "none"))
    if not names:
        return {"report_to": "none"}
    check(",".join(names))
    point_at(run_dir)
    return {"report_to": names, "project": project, "run_name": Path(run_dir).name}


def flat(event: ev.Log) -> dict[str, float]:
    """A `log` event as the flat metrics a trainer reports (train/loss, train/learning_rate, ...)."""
    named = {"loss": event.loss, "learning_rate": event.lr, "grad_norm": event.grad_norm,
             "epoch": event.epoch, "tokens_per_s": event.tokens_per_s, **(event.metrics or {})}
    return {f"train/{k}": float(v) for k, v in named.items() if isinstance(v, (int, float))}


class Tracker:
    """The sinks of a method with its own loop: `log(event)` after each `log` event, `close()` at the end."""

    def __init__(self, p: Any, project: str, run_dir: Path):
        names = sinks(getattr(p, "report_to", "none"))
        check(",".join(names))
        self.writer = self.trackio = None
        if not names:
            return
        point_at(run_dir)
        if "tensorboard" in names:
            self.writer = summary_writer(Path(run_dir) / layout.TENSORBOARD)
        if "trackio" in names:
            import trackio

            trackio.init(project=project, name=Path(run_dir).name, resume="allow",
                         config={k: v for k, v in vars(p).items() if isinstance(v, (int, float, str, bool))})
            self.trackio = trackio

    def log(self, event: ev.Log) -> None:
        metrics = flat(event)
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(key, value, event.step)
            self.writer.flush()
        if self.trackio is not None:
            self.trackio.log(metrics, step=event.step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.trackio is not None:
            self.trackio.finish()


def summary_writer(folder: Path):
    """A TensorBoard SummaryWriter on `folder`: torch's when tensorboard is installed, else tensorboardX's
    (the order transformers' own callback tries them in)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        from tensorboardX import SummaryWriter
    return SummaryWriter(log_dir=str(folder))
