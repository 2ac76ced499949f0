"""GGUF verification on the tiny model: a faithful F16 file passes, a wrong pairing fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench import files
from workbench.export import llama_tools
from workbench.export.verify import report_path, verify_gguf
from workbench.testing import make_tiny_model

pytestmark = pytest.mark.gguf


def to_f16(folder: Path, out: Path) -> Path:
    llama_tools.run_converter("convert_hf_to_gguf.py", [str(folder), "--outtype", "f16", "--outfile", str(out)],
                              status=lambda message: None)
    return out


@pytest.fixture(scope="module")
def tiny_f16(tiny_model, tmp_path_factory) -> Path:
    return to_f16(tiny_model, tmp_path_factory.mktemp("gguf") / "tiny-f16.gguf")


def test_f16_export_passes_and_writes_its_report(tiny_f16, tiny_model):
    # A random model never ends a chat turn by itself, so the stop check is not required here.
    report = verify_gguf(tiny_f16, tiny_model, "F16", require_stop=False)
    dist = report["distribution"]
    assert report["passed"], report["summary"]
    assert dist["top1"] >= 0.99 and dist["kl_mean"] < 0.001
    assert dist["positions"] > 300
    assert dist["ppl_gguf"] == pytest.approx(dist["ppl_hf"], rel=0.01)
    assert report["tokenizer"]["match"], "llama.cpp tokenizes the fixed text differently from transformers"
    assert report["chat"]["prompts"] == 3 and not report["chat"]["required"]
    assert report["summary"].startswith("F16: top-1 ") and report["summary"].endswith("passed")

    on_disk = files.read_toml(report_path(tiny_f16))
    assert on_disk["passed"] is True and on_disk["summary"] == report["summary"]
    assert on_disk["distribution"]["kl_mean"] == dist["kl_mean"]


def test_gguf_of_another_model_fails(tiny_f16, tmp_path):
    other = make_tiny_model(tmp_path / "other-tiny", seed=1)
    report = verify_gguf(tiny_f16, other, "F16", require_stop=False)
    assert not report["passed"]
    # Two random models with tied embeddings both mostly rank the current token first, so
    # top-1 agreement stays near 0.9; the distributions behind it differ ten times over the bound.
    assert report["distribution"]["top1"] < 0.99
    assert report["distribution"]["kl_mean"] > 0.005
    assert report["summary"].endswith("FAILED")
    assert files.read_toml(report_path(tiny_f16))["passed"] is False


def test_required_chat_stop_fails_a_model_that_never_stops(tiny_f16, tiny_model):
    report = verify_gguf(tiny_f16, tiny_model, "F16", texts=["A short text of a few words."])
    assert report["chat"]["required"] and report["chat"]["stopped"] < report["chat"]["prompts"]
    assert not report["passed"]
