"""Named starting points for a method's parameters: a quick test, a balanced run, a quality run.

A preset sets only the fields it names; the rest keep what the form holds. The shared presets
apply to any method, each value kept only where the method has that field and accepts the
value (so a method added later gets them too); a method's own presets add to them or
override them. Light: the UI reads this module.
"""

from __future__ import annotations

from typing import Any

from workbench import registry
from workbench.params import ParamError, coerce, describe

SHARED: dict[str, dict[str, Any]] = {
    "quick test": {"max_steps": 20, "batch_size": 2, "grad_accum": 1, "max_length": 256, "lora_r": 8,
                   "lora_alpha": 16, "eval_steps": 10, "save_steps": 20, "gradient_checkpointing": False},
    "balanced": {"max_steps": 0, "batch_size": 4, "grad_accum": 4, "max_length": 1024, "lora_r": 16,
                 "lora_alpha": 32, "use_dora": False, "use_rslora": False, "eval_steps": 50, "save_steps": 100},
    "quality": {"max_steps": 0, "batch_size": 4, "grad_accum": 8, "max_length": 2048, "lora_r": 64,
                "lora_alpha": 64, "use_rslora": True, "use_dora": True, "eval_steps": 100, "save_steps": 200},
    "low memory": {"batch_size": 1, "grad_accum": 16, "max_length": 512, "gradient_checkpointing": True,
                   "lora_r": 8, "lora_alpha": 16},
}

OWN: dict[str, dict[str, dict[str, Any]]] = {
    "sft": {
        "quick test": {"mode": "lora", "learning_rate": 2e-4},
        "balanced": {"mode": "lora", "learning_rate": 2e-4, "epochs": 3.0},
        "quality": {"mode": "lora", "learning_rate": 1e-4, "epochs": 3.0},
    },
    "reward": {
        "quick test": {"mode": "lora", "learning_rate": 5e-5},
        "balanced": {"mode": "lora", "learning_rate": 5e-5, "epochs": 1.0},
        "quality": {"mode": "full", "learning_rate": 1e-5, "epochs": 2.0},
    },
    "dpo": {
        "quick test": {"mode": "lora", "learning_rate": 5e-5, "beta": 0.1},
        "balanced": {"mode": "lora", "learning_rate": 2e-5, "beta": 0.1, "epochs": 1.0},
        "quality": {"mode": "lora", "learning_rate": 5e-6, "beta": 0.1, "epochs": 2.0},
    },
    "kto": {
        "quick test": {"mode": "lora", "learning_rate": 5e-5, "beta": 0.1},
        "balanced": {"mode": "lora", "learning_rate": 2e-5, "beta": 0.1, "epochs": 1.0},
        "quality": {"mode": "lora", "learning_rate": 5e-6, "beta": 0.1, "epochs": 2.0},
    },
    "orpo": {
        "quick test": {"mode": "lora", "learning_rate": 1e-4, "beta": 0.1},
        "balanced": {"mode": "lora", "learning_rate": 5e-5, "beta": 0.1, "epochs": 1.0},
        "quality": {"mode": "lora", "learning_rate": 2e-5, "beta": 0.1, "epochs": 2.0},
    },
    "embed": {  # the ranking losses take their negatives from the batch: batches stay large, no accumulation
        "quick test": {"learning_rate": 5e-5, "batch_size": 8, "max_length": 128},
        "balanced": {"learning_rate": 2e-5, "batch_size": 32, "grad_accum": 1, "max_length": 256, "epochs": 1.0},
        "quality": {"learning_rate": 2e-5, "batch_size": 64, "grad_accum": 1, "max_length": 512, "epochs": 3.0},
        "low memory": {"batch_size": 8, "grad_accum": 1, "max_length": 128},
    },
    "classifier": {
        "quick test": {"mode": "last_layer", "learning_rate": 1e-3, "batch_size": 8},
        "balanced": {"mode": "last_layer", "learning_rate": 1e-3, "epochs": 5.0, "batch_size": 16},
        "quality": {"mode": "lora", "learning_rate": 1e-4, "epochs": 3.0, "batch_size": 16},
        "low memory": {"mode": "last_layer", "batch_size": 4},
    },
}


def presets_for(method_name: str) -> dict[str, dict[str, Any]]:
    """{preset name: {field: value}} for a method; presets that set nothing it has are left out."""
    method = registry.get(method_name)
    infos = {i.name: i for i in describe(method.params)}
    own = OWN.get(method_name, {})
    found: dict[str, dict[str, Any]] = {}
    for name in list(SHARED) + [n for n in own if n not in SHARED]:
        values = {**SHARED.get(name, {}), **own.get(name, {})}
        kept = {k: v for k, v in values.items() if k in infos and _accepts(infos[k], v)}
        if kept:
            found[name] = kept
    return found


def _accepts(info, value: Any) -> bool:
    try:
        coerce(info, value)
    except ParamError:
        return False
    return True
