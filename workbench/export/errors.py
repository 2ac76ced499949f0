"""Why an export cannot be done: one error every export module raises (and the package re-exports)."""

from __future__ import annotations


class ExportError(RuntimeError):
    """An export that cannot be done; the message says why, for a person."""

    kind = "export"


class ExportExists(ExportError):
    """The output folder holds an earlier export of the workbench, complete or half-made: replaceable
    when the person says so (`--force`, or a second Start in the app)."""

    def __init__(self, out, half: bool, detail: str = ""):
        self.out, self.half = out, half
        what = f"a half-made export{detail}" if half else "an earlier export"
        super().__init__(f"{out} holds {what}; --force replaces it, or choose another output folder (--out).")
