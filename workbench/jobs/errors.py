"""Turn an exception from a run into a kind and one message a person can act on.

An exception class with a `kind` attribute (e.g. `export.ExportError`) is already written for a
person: its message is kept as it is, under that kind.
"""

from __future__ import annotations


def humanize(exc: BaseException) -> tuple[str, str]:
    from workbench.data.errors import DataError
    from workbench.data.kinds import RecordProblem
    from workbench.models import ModelError
    from workbench.params import ParamError

    text = str(exc) or type(exc).__name__
    name = type(exc).__name__
    if name == "OutOfMemoryError" or "out of memory" in text.lower() or isinstance(exc, MemoryError):
        return "out_of_memory", ("Out of memory. Lower batch_size or max_length, raise grad_accum to keep "
                                 "the effective batch, or use LoRA instead of full fine-tuning.")
    if isinstance(exc, ModelError):
        return "missing_model", text
    if isinstance(exc, (RecordProblem, DataError)):
        return "bad_data", text
    if isinstance(exc, ParamError):
        return "bad_spec", text
    if isinstance(exc, FileNotFoundError):
        return "missing_file", text
    if isinstance(getattr(type(exc), "kind", None), str):
        return type(exc).kind, text
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", "The run was interrupted."
    return "error", f"{name}: {text} (details in stderr.log)"
