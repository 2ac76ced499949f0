"""The models a project's playground can serve: the base, each run's output and checkpoints, and the
GGUF files exported from them (an adapter-only GGUF needs its base beside it and is left out)."""

from __future__ import annotations

from pathlib import Path

from workbench import locations
from workbench.jobs import store
from workbench.run import layout

# the methods whose runs write a language model (reward and classifier runs write a scoring head)
LM_METHODS = ("sft", "dpo", "grpo", "rloo", "ppo", "distill", "gkd")
ADAPTER_ONLY = "gguf-lora"  # the export format whose folder holds an adapter GGUF


def choices(project: str) -> list[store.ModelChoice]:
    """Base first, then newest runs first: each run's output, its checkpoints, its GGUF files."""
    out = [store.ModelChoice("base", "base model")]
    out += [store.ModelChoice(str(p), f"base model · {p.parent.name}/{p.name}")
            for p in gguf_files(layout.exports(locations.project_dir(project)))]
    runs = [c for c in store.model_choices(project, LM_METHODS) if c.ref != "base"]
    by_run: dict[str, list[store.ModelChoice]] = {}
    for choice in runs:
        by_run.setdefault(choice.ref[4:].partition("/")[0], []).append(choice)
    for run_id in sorted(by_run, reverse=True):
        out += by_run[run_id]
        out += [store.ModelChoice(str(p), f"{run_id} · {p.parent.name}/{p.name}")
                for p in gguf_files(locations.exports_dir(project, run_id))]
    return out


def gguf_files(exports: Path) -> list[Path]:
    if not exports.exists():
        return []
    return sorted(p for p in exports.glob("*/*.gguf") if p.parent.name != ADAPTER_ONLY)
