"""Typed method parameters: a dataclass whose fields carry help, bounds and choices.

The same metadata drives the CLI's `--set key=value`, the UI's form and validation,
so a parameter is described once. Fields that several classes share are declared once as
`Fields` and placed into a `@paramclass` by name, where its form shows them.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
from collections.abc import Iterator
from dataclasses import MISSING, Field, dataclass, field
from typing import Any


class ParamError(ValueError):
    """A parameter value a person must fix; the message names the field."""


# The upper bound of an int parameter that declares none: every count the workbench takes
# (steps, records, characters) is far below it, and a value above it is a typo or `1e99`.
INT_LIMIT = 10**9


def param(default: Any, help: str, *, min: float | None = None, max: float | None = None,
          choices: tuple[str, ...] | None = None, group: str = "training") -> Any:
    return field(default=default, metadata={"help": help, "min": min, "max": max,
                                            "choices": choices, "group": group})


class Fields:
    """Parameter fields that several params classes share, declared once, in form order.

    `Fields(lora_r=param(...), lora_alpha=param(...))`; a `@paramclass` body takes the group
    with a line such as `_lora: Fields = LORA`, and the group's fields stand in that place.
    """

    def __init__(self, **fields: Any):
        for name, f in fields.items():
            if not isinstance(f, Field) or f.default is MISSING:
                raise TypeError(f"{name}: a Fields entry is a param(...) with a default.")
        self._fields: dict[str, Field] = fields

    def without(self, *names: str) -> Fields:
        """The group less some of its fields, for a method that does not offer them."""
        unknown = sorted(set(names) - set(self._fields))
        if unknown:
            raise TypeError(f"Not in this group: {', '.join(unknown)}.")
        return Fields(**{n: f for n, f in self._fields.items() if n not in names})

    def copies(self) -> Iterator[tuple[str, Field]]:
        """Each field as a fresh copy (a dataclass takes ownership of the fields it is given)."""
        for name, f in self._fields.items():
            yield name, copy.copy(f)


def paramclass(cls: type) -> type:
    """`@dataclass`, once each `Fields` named in the class body is replaced by its fields, in place.

    The class keeps one order, the order of its body, for `describe()`, the form and `job.toml`.
    """
    annotations: dict[str, Any] = {}

    def add(name: str, annotation: Any) -> None:
        if name in annotations:
            raise TypeError(f"{cls.__name__}: the field {name} is declared twice.")
        annotations[name] = annotation

    for name, annotation in inspect.get_annotations(cls).items():
        group = cls.__dict__.get(name)
        if not isinstance(group, Fields):
            add(name, annotation)
            continue
        delattr(cls, name)
        for field_name, f in group.copies():
            add(field_name, type(f.default).__name__)
            setattr(cls, field_name, f)
    cls.__annotations__ = annotations
    return dataclass(cls)


@dataclass(frozen=True)
class ParamInfo:
    name: str
    kind: type
    default: Any
    help: str
    min: float | None
    max: float | None
    choices: tuple[str, ...] | None
    group: str


def describe(params_cls: type) -> list[ParamInfo]:
    infos = []
    for f in dataclasses.fields(params_cls):
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        md = f.metadata
        infos.append(ParamInfo(f.name, type(default), default, md.get("help", ""), md.get("min"),
                               md.get("max"), md.get("choices"), md.get("group", "training")))
    return infos


def coerce(info: ParamInfo, raw: Any) -> Any:
    """Turn a raw value (often a string from a form or the CLI) into the field's type, checked."""
    if isinstance(raw, str):
        text = raw.strip()
        try:
            if info.kind is bool:
                lowered = text.lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                    raise ValueError
                value: Any = lowered in ("true", "1", "yes", "on")
            elif info.kind is int:
                value = _to_int(text)
            elif info.kind is float:
                value = float(text)
            else:
                value = text
        except ValueError:
            raise ParamError(f"{info.name}: '{raw}' is not a valid {info.kind.__name__}.") from None
    else:
        value = raw
        if info.kind is float and isinstance(raw, int) and not isinstance(raw, bool):
            value = float(raw)
        if not isinstance(value, info.kind):
            raise ParamError(f"{info.name}: expected a {info.kind.__name__}, got {raw!r}.")
    if info.kind is float and not math.isfinite(value):
        raise ParamError(f"{info.name}: {value} is not a finite number.")
    if info.choices and value not in info.choices:
        raise ParamError(f"{info.name}: '{value}' is not one of {', '.join(info.choices)}.")
    if info.min is not None and value < info.min:
        raise ParamError(f"{info.name}: {value} is below the minimum {info.min:g}.")
    upper = upper_bound(info)
    if upper is not None and value > upper:
        shown = value if isinstance(value, float) or value < 10**15 else f"{value:.3g}"
        raise ParamError(f"{info.name}: {shown} is above the maximum {upper:g}.")
    return value


def upper_bound(info: ParamInfo) -> float | None:
    """The declared maximum; for an int that declares none, INT_LIMIT."""
    if info.max is None and info.kind is int:
        return INT_LIMIT
    return info.max


def _to_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        number = float(text)  # accepts "1e3"; raises ValueError on junk
        if not number.is_integer():  # also nan and inf
            raise
        return int(number)


def build(params_cls: type, values: dict[str, Any] | None = None) -> Any:
    """Defaults overridden by `values`; unknown keys and bad values raise ParamError."""
    infos = {i.name: i for i in describe(params_cls)}
    values = values or {}
    unknown = sorted(set(values) - set(infos))
    if unknown:
        raise ParamError(f"Unknown parameter(s): {', '.join(unknown)}. Known: {', '.join(infos)}.")
    return params_cls(**{k: coerce(infos[k], v) for k, v in values.items()})


def parse_assignments(items: list[str]) -> dict[str, str]:
    """`["lr=1e-4", "epochs=2"]` -> `{"lr": "1e-4", "epochs": "2"}`."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParamError(f"'{item}' is not key=value.")
        out[key.strip()] = value
    return out
