"""bench/gpu.py's CPU smoke mode: the GPU benchmark's rows run end to end on the tiny model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e.conftest import REPO

pytestmark = pytest.mark.e2e


def test_the_gpu_benchmark_runs_its_cpu_smoke_rows(tiny_model):
    done = subprocess.run([sys.executable, str(REPO / "bench" / "gpu.py"), "--smoke"], capture_output=True,
                          text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split("|")[2].strip(): line for line in done.stdout.splitlines() if line.startswith("| tiny |")}
    assert set(rows) == {"wb lora packing=on", "plain TRL lora"}
    assert "failed" not in done.stdout
    assert "packing=on attention=sdpa liger=off" in rows["wb lora packing=on"]
    for line in rows.values():
        tokens_per_s, s_per_step = (float(x) for x in line.split("|")[3:5])
        assert tokens_per_s > 0 and s_per_step > 0


def test_without_a_gpu_the_benchmark_says_so_in_one_line():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the benchmark runs")
    done = subprocess.run([sys.executable, str(REPO / "bench" / "gpu.py")], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert done.returncode == 2
    assert done.stderr.strip() == ("bench/gpu.py needs a CUDA GPU and torch sees none here; `bench/gpu.py --smoke` "
                                   "runs its CPU check.")


def test_a_budget_skips_the_rows_that_would_overrun_it_and_keeps_what_was_measured(tiny_model, tmp_path):
    out = tmp_path / "gpu.json"
    done = subprocess.run([sys.executable, str(REPO / "bench" / "gpu.py"), "--smoke", "--budget", "1", "--out",
                           str(out)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| tiny | plain TRL lora | skipped: the budget (1 s) would be overrun |" in done.stdout
    assert [r["row"] for r in json.loads(out.read_text())] == ["wb lora packing=on"]
