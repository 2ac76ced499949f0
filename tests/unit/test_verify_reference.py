"""The transformers reference of a GGUF verification: computed once per folder and token ids, shared."""

from __future__ import annotations

import shutil

import numpy as np

from workbench.export import verify
from workbench.testing import make_tiny_model


def test_the_reference_is_computed_once_and_recomputed_for_other_weights_or_texts(tiny_model, tmp_path):
    folder = shutil.copytree(tiny_model, tmp_path / "model")
    verify.prefetch(folder, n_threads=1).join(timeout=120)
    first = verify.reference(folder, n_threads=1)
    assert verify.reference(folder, n_threads=1) is first  # the second file of an export reuses it
    assert len(first.ids) == 2 and sum(len(i) for i in first.ids) > 300  # prose and a chat exchange

    # against itself, the comparison is exact
    side, ids = first.sides[0], first.ids[0]
    log_p = np.log(side["p"])
    parts = verify.compare_to(side, log_p, ids)
    np.testing.assert_allclose(parts["kl"], 0.0, atol=1e-9)
    assert parts["top1"].all()

    short = verify.reference(folder, ["A short text."], n_threads=1)
    assert short is not first and short.texts == ["A short text."]

    # the same path rewritten with other weights (a run's scratch folder) is a new reference
    shutil.rmtree(folder)
    make_tiny_model(folder, seed=1)
    other = verify.reference(folder, n_threads=1)
    assert other is not first and other.ids == first.ids
    kl = verify.compare_to(first.sides[0], np.log(other.sides[0]["p"]), ids)["kl"]
    assert kl.mean() > 0.005
