"""The engine never imports the UI; the UI never loads the ML stack, nor do the engine modules it reads.

Checked in fresh interpreters.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

ML_STACK = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "bitsandbytes")


def loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_screens_never_import_the_ml_stack():
    """Every module of the UI, imported in one interpreter, leaves torch and friends unloaded."""
    modules = loaded_after(
        "import importlib, pkgutil, screens, screens.app\n"
        "for info in pkgutil.walk_packages(screens.__path__, 'screens.'):\n"
        "    importlib.import_module(info.name)"
    )
    top_level = {m.split(".")[0] for m in modules}
    assert {"screens.widgets.gpu_panel", "screens.rank.screen"} <= modules  # the probe reached the subpackages
    assert "textual" in top_level
    assert not top_level & set(ML_STACK), f"the UI imported {sorted(top_level & set(ML_STACK))}"


def test_engine_never_imports_textual():
    modules = loaded_after(
        "import workbench, workbench.cli.main, workbench.jobs.worker, workbench.jobs.launch, workbench.jobs.store, "
        "workbench.export, workbench.registry, workbench.registry.specs, workbench.data.importer, workbench.plans.runner"
    )
    assert not {m for m in modules if m == "textual" or m.startswith("textual.")}


@pytest.mark.parametrize("module", [
    "workbench.project", "workbench.run.events", "workbench.run.layout", "workbench.run.liveness",
    "workbench.run.model_refs", "workbench.jobs.store", "workbench.jobs.launch", "workbench.registry",
    "workbench.registry.specs", "workbench.registry.presets", "workbench.data.importer", "workbench.models",
    "workbench.cli.main", "workbench.evaluate.heldout", "workbench.plans.pipelines", "workbench.ranking.rankings",
])
def test_light_engine_modules_skip_the_ml_stack(module):
    """The UI reads these modules, so importing one must not pull torch and friends."""
    modules = loaded_after(f"import {module}")
    assert not {m.split(".")[0] for m in modules} & set(ML_STACK)


def test_import_contracts_hold():
    """import-linter checks every import path in both packages, not just the ones a test happens to load."""
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint), "--no-cache"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
