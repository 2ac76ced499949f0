"""An embedding run's one export: its sentence-transformers folder copied by the export job's real worker,
without the trainer's state, loading as the same model."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import cli
from tests.unit.test_embed_export_refusal import embed_run
from workbench import locations
from workbench import project as projects
from workbench.run import layout

pytestmark = pytest.mark.e2e

TEXTS = ["Which note is about comet?", "A note about a comet.", "A note about a pixel."]


def test_merged_export_of_an_embedding_run_is_its_sentence_transformers_folder(home, tiny_model, tmp_path):
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    torch.set_num_threads(1)
    projects.create("notes", base_model=str(tiny_model))
    run_id = embed_run("notes")
    folder = locations.run_dir("notes", run_id) / layout.MODEL
    encoder = Transformer(str(tiny_model), max_seq_length=32)
    model = SentenceTransformer(modules=[encoder, Pooling(encoder.get_embedding_dimension())], device="cpu")
    model.save(str(folder))
    (folder / "optimizer.pt").write_bytes(b"trainer state")  # a checkpoint's: not part of the model

    out = tmp_path / "exported"
    result = cli("export", "notes", run_id, "--format", "merged", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip().splitlines()[-1]) == out
    assert "Sentence-transformers model written to" in result.stdout
    assert (out / "modules.json").exists() and not (out / "optimizer.pt").exists()
    copied = SentenceTransformer(str(out), device="cpu")
    assert torch.allclose(torch.tensor(copied.encode(TEXTS)), torch.tensor(model.encode(TEXTS)), atol=1e-6)
