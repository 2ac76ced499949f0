"""GGUF exports of a run (`gguf`: merged model; `gguf-lora`: the adapter alone) or of a project's base."""

from __future__ import annotations

import shutil
from pathlib import Path

from workbench import locations, models
from workbench import project as projects
from workbench.export import ExportError, default_out, gguf
from workbench.export.embedding import refuse_embedding
from workbench.export.reward import refuse_gguf
from workbench.jobs import store
from workbench.run import layout
from workbench.run.spec import JobSpec

GGUF_FORMATS = ("gguf", "gguf-lora")
DEFAULT_QUANTS = ("Q4_K_M",)


def base_gguf_file(base_model: str) -> Path | None:
    """The base model as a GGUF file already on disk, if it is one (the embedded default is)."""
    if base_model == "default":
        return models.default_gguf()
    return Path(base_model) if base_model.endswith(".gguf") else None


def print_results(results: list[dict], out: Path, status) -> None:
    """One line per file; a failed verification fails the export (the files and reports are kept)."""
    failed = []
    for result in results:
        name = Path(result["path"]).name
        status(f"{name}: {'passed' if result['passed'] else 'FAILED'}")
        if not result["passed"]:
            failed.append(name)
    if failed:
        raise ExportError(f"verification failed for {', '.join(failed)}: see the .verify.toml beside each file in {out}")


def export_run(project: str, run_id: str, fmt: str, quants=DEFAULT_QUANTS, outtype: str = "f16",
               out: Path | None = None, status=print, chat_check: bool = True, on_file=None) -> Path:
    """The GGUF files of a run in `out`, each verified (`on_file`: see `gguf`); the scratch folder of
    the merged model is removed however the export ends."""
    if fmt not in GGUF_FORMATS:
        raise ExportError(f"Unknown format '{fmt}'. Available: {', '.join(GGUF_FORMATS)}.")
    folder, is_adapter = store.trained_weights(project, run_id)
    spec = JobSpec.load(locations.run_dir(project, run_id))
    refuse_gguf(spec, run_id)
    refuse_embedding(spec, run_id, fmt)
    base = models.resolve(spec.model_path or spec.base_model)
    out = Path(out) if out else default_out(project, run_id, fmt)
    if fmt == "gguf-lora" and not is_adapter:
        raise ExportError(f"Run {run_id} trained all weights (mode=full): export it as 'gguf'.")
    tokenizer_folder = folder if gguf.has_chat_template(folder) else base
    model_folder = base if is_adapter else folder
    merged_size = gguf.count_params(model_folder) * 4
    if fmt == "gguf":
        quants = gguf.preflight(model_folder, out, list(quants), outtype, extra=merged_size)
    else:
        quants = gguf.preflight(model_folder, out, [], "f16", extra=merged_size)
    if not gguf.has_chat_template(tokenizer_folder):
        raise ExportError(f"{tokenizer_folder} has no chat template; the GGUF would not know how to format a chat.")

    from workbench.export.merged import export_merged

    merged = layout.scratch(out)
    shutil.rmtree(merged, ignore_errors=True)
    try:
        export_merged(folder, is_adapter, spec, merged, status)
        if fmt == "gguf":
            results = gguf.export_model(merged, out, run_id, quants, outtype, status, chat_check, on_file)
        else:
            results = gguf.export_lora(folder, base, base_gguf_file(spec.base_model), merged, out, run_id, status,
                                       chat_check, on_file)
    finally:
        shutil.rmtree(merged, ignore_errors=True)
    print_results(results, out, status)
    return out


def export_base(project: str, quants=DEFAULT_QUANTS, outtype: str = "f16", out: Path | None = None,
                status=print, chat_check: bool = True, on_file=None) -> Path:
    """The project's base model as GGUF files."""
    base_model = projects.load(project).base_model
    folder = models.resolve(base_model, status=lambda message, progress=None: status(message))
    name = models.describe(base_model).removesuffix(".gguf")
    out = Path(out) if out else default_out(project, "", "gguf")
    quants = gguf.preflight(folder, out, list(quants), outtype)
    results = gguf.export_model(folder, out, name, quants, outtype, status, chat_check, on_file)
    print_results(results, out, status)
    return out
