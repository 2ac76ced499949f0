"""The peak a worker reports is its own, not its parent's."""

from __future__ import annotations

import subprocess
import sys

from workbench.run import peaks


def test_the_figure_is_read_from_the_status_file(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmPeak:\t 900 kB\nVmHWM:\t  2048 kB\nVmRSS:\t 1024 kB\n")
    assert peaks.host_bytes(str(status)) == 2048 * 1024
    status.write_text("Name:\tpython\n")
    assert peaks.host_bytes(str(status)) == 0
    assert peaks.host_bytes(str(tmp_path / "absent")) == 0


def test_a_child_of_a_large_process_reports_its_own_peak():
    """Linux folds a parent's high-water mark into its child's ru_maxrss at exec; VmHWM starts afresh."""
    held = bytearray(400 * 2**20)
    held[::4096] = b"\1" * len(held[::4096])  # touched: resident
    code = "from workbench.run import peaks; print(peaks.host_bytes())"
    child = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert 0 < child < 200 * 2**20 < peaks.host_bytes()

    del held
