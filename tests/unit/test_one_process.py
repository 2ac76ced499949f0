"""Methods that run in one process get one on any machine (`processes=0` means one a GPU), and several
processes asked of them are refused in one line before any run folder exists."""

from __future__ import annotations

import pytest

from workbench import registry
from workbench.jobs import store
from workbench.jobs.launch import LaunchError
from workbench.registry.specs import make_spec
from workbench.run.spec import Runtime


def test_data_jobs_and_ppo_s_own_loop_run_in_one_process_the_trainer_methods_on_several():
    single = sorted(m.name for m in registry.METHODS.values() if m.one_process)
    assert single == ["judge", "ppo", "sample", "synth"]


def test_a_one_process_method_is_given_one_process_whatever_the_machine(tiny_project):
    assert make_spec(tiny_project, "ppo", {"rewards": "length"}).runtime.processes == 1
    assert make_spec(tiny_project, "sample", {}).runtime.processes == 1
    assert make_spec(tiny_project, "sft", {}).runtime.processes == 0  # one a visible GPU, decided by the worker
    assert make_spec(tiny_project, "ppo", {"rewards": "length"}, runtime=Runtime(processes=1)).runtime.processes == 1


@pytest.mark.parametrize(("method", "why"), [
    ("ppo", "trains in a loop of its own, not distributed"),
    ("sample", "writes data"),
])
def test_several_processes_for_a_one_process_method_are_refused_in_one_line(tiny_project, method, why):
    with pytest.raises(LaunchError) as refused:
        make_spec(tiny_project, method, {"rewards": "length"} if method == "ppo" else {},
                  runtime=Runtime(processes=2))
    assert str(refused.value) == (f"processes=2: {method} runs in one process (it {why}); several processes are "
                                  "for the methods built on transformers' Trainer.")
    assert not store.list_runs(tiny_project)
