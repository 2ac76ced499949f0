"""Where a run goes, the last section of the method form: this machine (its processes and GPUs) or a Slurm
cluster (partition, nodes, GPUs per node, time limit, account). It reads as the runtime assignments the CLI
takes (`--target slurm --set-runtime partition=gpu,nodes=2`), so the form and `workbench train` build the
same runtime (workbench.jobs.targets.runtime_from)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Select, Static, Switch

TARGET_CHOICES = [("this machine", "local"), ("a Slurm cluster", "slurm")]
SHARDING_CHOICES = [("auto", "auto"), ("ddp", "ddp"), ("fsdp", "fsdp")]  # workbench.jobs.ranks.SHARDINGS
# (setting, default, help, whole number at least): on this machine, then on Slurm.
LOCAL = [
    ("processes", "0", "ranks of one run (under torchrun); 0 = one per GPU used, one on a CPU", 0),
    ("gpus", "", "the GPUs to use, e.g. 0,1; empty = every visible one", None),
]
SLURM = [
    ("partition", "", "the partition; empty = the cluster's default", None),
    ("nodes", "1", "machines of the allocation, one task each", 1),
    ("gpus_per_node", "1", "GPUs on each node, one rank each", 1),
    ("time", "1:00:00", "time limit (minutes, H:MM:SS or D-HH:MM); the run saves and is requeued before it", None),
    ("account", "", "the account to charge; empty = yours by default", None),
]


class WhereFields(Vertical):
    """The target and its settings; `read()` gives (target, assignments, problem)."""

    DEFAULT_CSS = """
    WhereFields { height: auto; }
    WhereFields .slurm { display: none; }
    WhereFields.-slurm .slurm { display: block; }
    """

    def compose(self) -> ComposeResult:
        yield Static("Where it runs", classes="group")
        yield Horizontal(Label("target", classes="name"),
                         Select(TARGET_CHOICES, value="local", allow_blank=False, id="where-target", compact=True),
                         Static("a detached worker here, or a job sent with sbatch (its folder must be on a "
                                "filesystem the nodes share)", classes="help"),
                         classes="field")
        for name, default, text, _ in LOCAL:
            yield self.row(name, default, text)
        yield Horizontal(Label("sharding", classes="name"),
                         Select(SHARDING_CHOICES, value="auto", allow_blank=False, id="where-sharding", compact=True),
                         Static("ddp: a whole model per process; fsdp: weights and optimizer split over them "
                                "(mode=full); auto: fsdp when a full step does not fit one GPU", classes="help"),
                         classes="field")
        yield Horizontal(Label("oom_retry", classes="name"), Switch(value=True, id="where-oom_retry"),
                         Static("out of memory: retry once with half the micro-batch, twice grad_accum",
                                classes="help"),
                         classes="field")
        for name, default, text, _ in SLURM:
            yield self.row(name, default, text, "slurm")

    @staticmethod
    def row(name: str, default: str, text: str, classes: str = "") -> Horizontal:
        return Horizontal(Label(name, classes="name"), Input(default, id=f"where-{name}", compact=True),
                          Static(text, classes="help", markup=False), classes=f"field {classes}".strip())

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "where-target":
            self.set_class(event.value == "slurm", "-slurm")

    @property
    def target(self) -> str:
        return str(self.query_one("#where-target", Select).value)

    def read(self) -> tuple[str, list[str], str]:
        """(target, ["key=value", ...] for the settings changed from their defaults, problem or "")."""
        target = self.target
        assignments = []
        for name, default, _, least in LOCAL + (SLURM if target == "slurm" else []):
            value = self.query_one(f"#where-{name}", Input).value.strip()
            if least is not None:
                try:
                    if int(value) < least:
                        raise ValueError(value)
                except ValueError:
                    return target, [], f"{name} must be a whole number of at least {least}, not '{value}'."
            if "," in value and name != "gpus":
                return target, [], f"{name} cannot hold a comma."
            if value != default:
                assignments.append(f"{name}={value}")
        sharding = str(self.query_one("#where-sharding", Select).value)
        if sharding != "auto":
            assignments.append(f"sharding={sharding}")
        if not self.query_one("#where-oom_retry", Switch).value:
            assignments.append("oom_retry=false")
        return target, assignments, ""
