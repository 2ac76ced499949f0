"""Where a run's processes go: the chosen GPUs reach one-process runs too, and a machine that lacks the
GPUs or processes asked for refuses in one line (`workbench.jobs.ranks`)."""

from __future__ import annotations

import os

import pytest
import torch

from workbench.jobs import ranks, worker
from workbench.jobs.ranks import RanksError
from workbench.run.spec import JobSpec, Runtime


def machine(monkeypatch, gpus: int) -> None:
    """This process sees `gpus` CUDA devices (none: no CUDA)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)


def test_chosen_gpus_are_numbered_as_nvidia_smi_numbers_them():
    assert ranks.gpu_env(Runtime(gpus="1,0")) == {"CUDA_VISIBLE_DEVICES": "1,0", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    assert ranks.gpu_env(Runtime()) == {}
    assert ranks.gpu_env(Runtime(gpus="0", device="cpu")) == {}  # refused by check; never placed


def test_more_processes_than_gpus_is_refused_and_cpu_ranks_are_not(monkeypatch):
    machine(monkeypatch, 2)
    assert ranks.count(Runtime(processes=2)) == (2, "2 processes, as asked")
    with pytest.raises(RanksError, match=r"^processes=4 but this machine shows 2 GPU\(s\): one process a GPU\. "
                                         r"Ask for 2 or fewer, or set device=cpu to run the ranks on the CPU\.$"):
        ranks.count(Runtime(processes=4))
    assert ranks.count(Runtime(processes=4, device="cpu"))[0] == 4
    machine(monkeypatch, 0)
    assert ranks.count(Runtime(processes=2))[0] == 2  # no CUDA: the ranks run on the CPU (gloo)


def test_gpus_the_machine_lacks_are_refused(monkeypatch):
    machine(monkeypatch, 1)  # CUDA_VISIBLE_DEVICES=0,3 on a 2-GPU machine: CUDA stops at 3 and shows one
    with pytest.raises(RanksError, match=r"^gpus=0,3: only 1 of them exist on this machine \(`nvidia-smi -L` lists"):
        ranks.count(Runtime(gpus="0,3"))
    machine(monkeypatch, 0)
    with pytest.raises(RanksError, match=r"^gpus=0: no GPU is visible on this machine"):
        ranks.count(Runtime(gpus="0"))
    machine(monkeypatch, 2)
    assert ranks.count(Runtime(gpus="0,1")) == (2, "one process per chosen GPU (0,1)")


def test_a_one_process_run_on_a_chosen_gpu_sees_that_gpu_alone(monkeypatch, tmp_path):
    """The worker takes the chosen GPU before anything asks CUDA: the one-process run trains on it."""
    machine(monkeypatch, 1)
    for name in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER"):  # set here so that the test puts them back
        monkeypatch.setenv(name, "")
    JobSpec(id="r", project="p", method="sft", base_model="m", params={}, train=[],
            runtime=Runtime(gpus="1")).save(tmp_path)
    assert worker._several_processes(tmp_path) is None  # one process: this worker trains
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1" and os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
