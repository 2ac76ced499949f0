"""Exports of an embedding run (method embed): its model folder is a sentence-transformers model.

Such a run trains all the weights of an encoder with a pooling layer: there is no adapter to
export or fold in, and no language-model head that llama.cpp could run, so the adapter and GGUF
formats are refused in one line before an export starts. Its one export is the folder itself,
copied without the trainer's state ('merged': the model whole), loaded with
`SentenceTransformer(path)`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from workbench.export.errors import ExportError
from workbench.run import layout

METHODS = ("embed",)
FOLDER_FORMAT = "merged"
TRAINER_STATE = ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state*.pth", layout.CHECKPOINT_COMPLETE,
                 "training_args.bin")


def is_embedding(spec) -> bool:
    return spec.method in METHODS


def refuse_embedding(spec, run_id: str, fmt: str) -> None:
    """ExportError when run `run_id` is an embedding model and `fmt` is not its folder's copy."""
    if is_embedding(spec) and fmt != FOLDER_FORMAT:
        raise ExportError(f"Run {run_id} is an embedding model (method {spec.method}): its folder is a "
                          f"sentence-transformers model, with no adapter and no language-model head, so it has no "
                          f"'{fmt}' export; export it as '{FOLDER_FORMAT}' (a copy of that folder) or load it from "
                          "there with SentenceTransformer(path).")


def export_embedding_folder(folder: Path, out: Path, status) -> Path:
    """The sentence-transformers folder of the run (`folder`: its model or latest checkpoint) copied to `out`."""
    status(f"Copying the sentence-transformers model from {folder.name}")
    shutil.copytree(folder, out, ignore=shutil.ignore_patterns(*TRAINER_STATE), dirs_exist_ok=True)
    status(f"Sentence-transformers model written to {out}: load it with SentenceTransformer(path)")
    return out
