"""Exports of a run: the LoRA adapter (PEFT format) or a merged model folder.

An export runs as a job of its own (`export.job`); the GGUF formats are in `gguf_run`.
"""

from __future__ import annotations

from pathlib import Path

from workbench import locations
from workbench.export.errors import ExportError
from workbench.export.outdir import holds_files
from workbench.jobs import store
from workbench.run.spec import JobSpec

__all__ = ["FORMATS", "ExportError", "default_out", "export"]

FORMATS = ("lora", "merged")


def default_out(project: str, run_id: str, fmt: str) -> Path:
    """`exports/<format>` of the run, or of the project's base model when `run_id` is empty."""
    exports = locations.exports_dir(project, run_id) if run_id else locations.base_exports_dir(project)
    return exports / fmt


def export(project: str, run_id: str, fmt: str, out: Path | None = None, status=print) -> Path:
    if fmt not in FORMATS:
        raise ExportError(f"Unknown format '{fmt}'. Available: {', '.join(FORMATS)}.")
    folder, is_adapter = store.trained_weights(project, run_id)
    spec = JobSpec.load(locations.run_dir(project, run_id))
    out = Path(out) if out else default_out(project, run_id, fmt)
    if holds_files(out):
        raise ExportError(f"{out} exists and is not empty; choose another output folder (--out).")
    from workbench.export.embedding import export_embedding_folder, is_embedding, refuse_embedding

    refuse_embedding(spec, run_id, fmt)
    if is_embedding(spec):
        return export_embedding_folder(folder, out, status)
    if fmt == "lora":
        if not is_adapter:
            mode = spec.params.get("mode", "full")
            raise ExportError(f"Run {run_id} has no adapter (mode={mode} trains the model's own weights): "
                              "export it as 'merged'.")
        from workbench.export.adapter import export_adapter

        return export_adapter(folder, spec, out, status)
    from workbench.export.reward import export_reward_merged, is_reward

    if is_reward(spec):
        return export_reward_merged(folder, is_adapter, spec, out, status)
    from workbench.export.merged import export_merged

    return export_merged(folder, is_adapter, spec, out, status)
