"""Exports load in plain transformers/PEFT, in another process, and mean the same model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e.conftest import events, of_type
from workbench import locations
from workbench.cli.main import main
from workbench.run import events as ev

pytestmark = pytest.mark.e2e

# Run in a fresh interpreter: nothing of the workbench is imported, only what a user would use.
LOAD_AND_COMPARE = r"""
import json, sys, torch
from transformers import AutoModelForCausalLM
from peft import PeftModel

base_path, adapter_path, merged_path = sys.argv[1:4]
ids = torch.tensor([[1, 504, 2143, 30, 3458, 28, 17, 2]])
with torch.no_grad():
    base = AutoModelForCausalLM.from_pretrained(base_path).eval()
    base_logits = base(ids).logits
    tuned = PeftModel.from_pretrained(base, adapter_path).eval()
    tuned_logits = tuned(ids).logits
    merged = AutoModelForCausalLM.from_pretrained(merged_path).eval()
    merged_logits = merged(ids).logits
print(json.dumps({
    "adapter_effect": (tuned_logits - base_logits).abs().max().item(),
    "merged_vs_adapter": (merged_logits - tuned_logits).abs().max().item(),
    "same_top1": bool((merged_logits.argmax(-1) == tuned_logits.argmax(-1)).all()),
    "merged_has_lora_keys": any("lora" in k for k in merged.state_dict()),
}))
"""


def test_lora_and_merged_exports_load_elsewhere_and_agree(lora_run, tiny_model, capsys):
    project, run_id, _ = lora_run
    assert main(["export", project, run_id, "--format", "lora"]) == 0
    adapter = locations.exports_dir(project, run_id) / "lora"
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_model)  # points at a base that exists

    assert main(["export", project, run_id, "--format", "merged"]) == 0
    merged = locations.exports_dir(project, run_id) / "merged"
    assert (merged / "config.json").exists() and (merged / "tokenizer_config.json").exists()

    out = subprocess.run([sys.executable, "-c", LOAD_AND_COMPARE, str(tiny_model), str(adapter), str(merged)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["adapter_effect"] > 1e-3, "the adapter changes nothing: the test could not fail"
    assert report["merged_vs_adapter"] < 1e-4 and report["same_top1"]
    assert not report["merged_has_lora_keys"]

    capsys.readouterr()
    assert main(["export", project, run_id, "--format", "lora"]) == 1  # never overwrites an export unasked
    assert f"{adapter} holds an earlier export; --force replaces it" in capsys.readouterr().err
    (adapter / "stale.txt").write_text("from before")
    assert main(["export", project, run_id, "--format", "lora", "--force"]) == 0
    assert (adapter / "adapter_config.json").exists() and not (adapter / "stale.txt").exists()


def test_full_fine_tuning_trains_every_weight_and_exports_merged(full_run, tmp_path, capsys):
    import torch
    from transformers import AutoModelForCausalLM

    project, run_id = full_run
    begin = of_type(events(project, run_id), ev.TrainBegin)[0]
    assert begin.trainable_params == begin.total_params
    run_dir = locations.run_dir(project, run_id)
    assert (run_dir / "model" / "config.json").exists() and not (run_dir / "adapter").exists()

    assert main(["export", project, run_id, "--format", "lora"]) == 1
    assert "export it as 'merged'" in capsys.readouterr().err
    out = tmp_path / "merged-full"
    assert main(["export", project, run_id, "--format", "merged", "--out", str(out)]) == 0

    from workbench import project as projects

    ids = torch.tensor([[1, 504, 2143, 30, 3458]])
    with torch.no_grad():
        exported = AutoModelForCausalLM.from_pretrained(out)(ids).logits
        trained = AutoModelForCausalLM.from_pretrained(run_dir / "model")(ids).logits
        base = AutoModelForCausalLM.from_pretrained(projects.load(project).base_model)(ids).logits
    assert torch.allclose(exported, trained, atol=1e-5)
    assert (exported - base).abs().max() > 1e-3  # it did train
