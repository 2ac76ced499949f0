"""An export's output folder: what it holds, and the mark that tells a finished export from a half-made one.

An export job writes `.workbench-export.toml` into its output folder before anything else (state
`writing`) and sets it to `complete` once every file is in and verified. A folder whose mark is not
`complete` was left by an export that was killed or failed: it is reported as half-made, and the next
export replaces it when the person says so (`--force`, a second Start in the app). A folder without the
mark holds someone else's files: no export ever deletes it.
"""

from __future__ import annotations

from pathlib import Path

from workbench.export.errors import ExportError, ExportExists
from workbench.files import read_toml, write_toml
from workbench.run import layout


def out_state(out: Path) -> tuple[str, str]:
    """What the output folder `out` holds: ("empty", ""), ("complete", ""), ("half", how it ended) for an
    export that never completed (killed, failed, stopped while replacing), or ("other", "") for files no
    export wrote."""
    out = Path(out)
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return "empty", ""
    try:
        mark = read_toml(out / layout.EXPORT_MARK)["export"]
    except (OSError, ValueError, KeyError, TypeError):
        return "other", ""
    if mark.get("state") == "complete":
        return "complete", ""
    return "half", f" (export {mark.get('job', '?')} did not complete)"


def check_out(out: Path, force: bool = False) -> None:
    """Refuse an output folder that holds something: an earlier export unless `force` (ExportExists),
    anything else always."""
    state, detail = out_state(out)
    if state == "other":
        raise ExportError(f"{out} exists and is not empty; choose another output folder (--out).")
    if state in ("complete", "half") and not force:
        raise ExportExists(out, half=state == "half", detail=detail)


def mark(out: Path, state: str, **about: str) -> None:
    """Write the folder's mark: `writing` when an export begins, `complete` once all of it is in."""
    out.mkdir(parents=True, exist_ok=True)
    write_toml(out / layout.EXPORT_MARK, {"export": {"state": state, **about}})


def holds_files(out: Path) -> bool:
    """Whether `out` holds anything but its mark (an export's own checks take a marked folder as new)."""
    return Path(out).is_dir() and any(p.name != layout.EXPORT_MARK for p in Path(out).iterdir())
