"""Which model a job starts from, named the way a person names it.

A reference is `base` (the project's base model), `run:<id>` or the bare run id (what a
run produced: its adapter or its full model), `run:<id>/checkpoint-N` (one of its checkpoints), or a path
(a model folder, an adapter folder or a .gguf file). `resolve_ref` turns it into the
string a job spec holds as its base model; `models.resolve` then loads any of them
(an adapter is merged into its own base once). Light: no torch.
"""

from __future__ import annotations

from pathlib import Path

from workbench import locations
from workbench import project as projects
from workbench.files import read_toml
from workbench.run import layout


class RefError(ValueError):
    pass


def run_output(project_name: str, run_id: str) -> Path:
    """The adapter or model folder a completed run wrote."""
    run_dir = locations.run_dir(project_name, run_id)
    if not run_dir.exists():
        raise RefError(f"Project '{project_name}' has no run '{run_id}'.")
    result = run_dir / layout.RESULT
    if result.exists():
        output = read_toml(result).get("result", {}).get("output", "")
        if output and Path(output).exists():
            return Path(output)
    found = layout.output(run_dir)
    if found is not None:
        return found
    raise RefError(f"Run '{run_id}' has produced no model yet (it has not completed); "
                   f"name one of its checkpoints instead: run:{run_id}/checkpoint-N.")


def resolve_ref(project_name: str, ref: str) -> str:
    """The base-model string for a job spec: `default`, or an absolute path."""
    ref = (ref or "base").strip()
    if ref == "base":
        return projects.load(project_name).base_model
    if ref.startswith("run:"):
        run_id, _, checkpoint = ref[4:].partition("/")
        if not checkpoint:
            return str(run_output(project_name, run_id))
        folder = layout.checkpoints(locations.run_dir(project_name, run_id)) / checkpoint
        if not layout.is_complete_checkpoint(folder):
            raise RefError(f"Run '{run_id}' has no complete checkpoint '{checkpoint}'.")
        return str(folder)
    if ref == "default":
        return ref
    if "/" not in ref and (locations.run_dir(project_name, ref) / layout.SPEC).exists():
        return resolve_ref(project_name, f"run:{ref}")  # a bare run id names that run
    path = Path(ref).expanduser()
    if not path.exists():
        raise RefError(f"Model '{ref}' does not exist: give base, run:<id>, run:<id>/checkpoint-N or a path.")
    return str(path.resolve())
