"""The terminal going away while a command prints: the command ends quietly, never with a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.e2e.conftest import REPO

pytestmark = pytest.mark.faults


def test_a_closed_output_ends_the_command_quietly(home):
    """`workbench methods | head -0`, or an SSH session closing under it: EPIPE/EIO on print."""
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "methods"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=REPO, env=dict(os.environ))
    proc.stdout.close()  # before the interpreter has started: every print meets a closed pipe
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert b"Traceback" not in err and b"Broken pipe" not in err and b"Exception ignored" not in err, err
