"""The UI process never loads the machine-learning stack, checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = {"torch", "transformers", "trl", "peft", "datasets", "accelerate", "bitsandbytes"}

CODE = """
import importlib, json, pkgutil, sys
import screens, screens.app
for info in pkgutil.walk_packages(screens.__path__, "screens."):
    importlib.import_module(info.name)
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def test_screens_never_import_the_ml_stack():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    top_level = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "textual" in top_level  # the probe really imported the UI
    assert not top_level & HEAVY, f"the UI imported {sorted(top_level & HEAVY)}"
