"""Why an export cannot be done: one error every export module raises (and the package re-exports)."""

from __future__ import annotations


class ExportError(RuntimeError):
    """An export that cannot be done; the message says why, for a person."""

    kind = "export"
