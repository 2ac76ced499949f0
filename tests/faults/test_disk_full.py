"""A full disk, on a small tmpfs of its own (a user and mount namespace: `unshare -rm`).

Before: the first checkpoint that did not fit failed deep in torch ("[enforce fail at
inline_container.cc:672] unexpected pos") and left a half checkpoint; when the events file could no
longer grow, the run showed `lost (killed?)` with its events cut mid-line. Now each save is checked
against the free space first (the last checkpoint's size, or the weights and optimizer moments before
the first), a checkpoint is written under `checkpoints/.staging` and renamed once whole, and the event
writer holds a reserve of blocks that it gives back when the disk fills, so the error that ends the
run lands whole and says what was needed, what was free, and which checkpoint is intact."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.faults.small_disk import on_small_disk

pytestmark = pytest.mark.faults


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


needs_namespaces = pytest.mark.skipif(not _namespaces_work(),
                                      reason="unprivileged user and mount namespaces (unshare -rm) are off here")


@needs_namespaces
def test_a_first_checkpoint_that_does_not_fit_stops_the_run_with_its_numbers(tmp_path):
    got = on_small_disk("first_checkpoint_does_not_fit", tmp_path / "fs", 40)
    assert got["rc"] == 1 and got["state"] == "failed" and got["kind"] == "disk_full"
    assert re.fullmatch(
        r"No space left on \S+ while saving checkpoint 2: [\d.,]+ MB needed, [\d.,]+ MB free; "
        r"the run stopped at step 2, no checkpoint was written yet\. Free some space, then resume it\.",
        got["error"]), got["error"]
    assert got["checkpoints"] == []  # no half checkpoint, no staging folder
    assert got["whole_lines"] and not got["reserve_left"]
    assert "unexpected pos" not in got["stderr"]


@needs_namespaces
def test_a_checkpoint_that_does_not_fit_keeps_the_last_one_and_the_run_resumes_from_it(tmp_path):
    got = on_small_disk("second_checkpoint_does_not_fit_then_resume", tmp_path / "fs", 100)
    before, after = got["before"], got["after"]
    assert before["rc"] == 1 and before["state"] == "failed" and before["kind"] == "disk_full"
    assert "while saving checkpoint 4" in before["error"]
    assert "the run stopped at step 4, checkpoint 2 is intact" in before["error"]
    assert before["checkpoints"] == ["checkpoint-2"] and before["whole_lines"]
    assert got["resume_rc"] == 0, got["resume_stderr"]
    assert after["state"] == "completed" and after["finished"] == ["completed"]
    assert after["checkpoints"] == ["checkpoint-2", "checkpoint-4", "checkpoint-6"] and after["whole_lines"]


@needs_namespaces
def test_events_stay_whole_lines_when_the_disk_fills(tmp_path):
    got = on_small_disk("events_fill_the_disk", tmp_path / "fs", 1)
    assert len(got["raised"]) == 1  # the first write on the full disk says so, once; the next ones fit
    full_at, message = got["raised"][0]
    assert "No space left on" in message and "while writing the run's events" in message
    assert got["steps"] == full_at + 3
    assert got["lines"] == ["status"] * (1 + got["steps"]) + ["error"] and got["ends_with_newline"]
    assert not got["reserve_left"]
