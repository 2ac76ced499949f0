"""Export a LoRA adapter in PEFT's own format, pointing at a base model that exists."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from workbench import models
from workbench.files import write_atomic

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")


def export_adapter(folder: Path, spec, out: Path, status) -> Path:
    base = models.resolve(spec.model_path or spec.base_model)
    out.mkdir(parents=True, exist_ok=True)
    status(f"Copying the adapter from {folder.name}")
    for name in ADAPTER_FILES:
        if (folder / name).exists():
            shutil.copy2(folder / name, out / name)
    config = json.loads((out / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(base)
    write_atomic(out / "adapter_config.json", json.dumps(config, indent=2))
    models.load_tokenizer(base if not (folder / "tokenizer_config.json").exists() else folder).save_pretrained(out)
    status(f"Adapter written to {out}")
    return out
