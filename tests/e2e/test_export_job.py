"""An export is a job of its own: it outlives whoever started it, and stopped, it leaves no scratch folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, of_type, wait_for
from workbench import locations
from workbench.export import job as export_job
from workbench.jobs import store
from workbench.run import events as ev
from workbench.run import layout

pytestmark = pytest.mark.e2e

# Start the export, then hang up on the whole process group, as a dropped SSH connection does.
STARTER = r"""
import os, signal, sys
from workbench.export import job
folder = job.start(sys.argv[1], sys.argv[2], "lora", sys.argv[3])
print(folder, flush=True)
os.killpg(0, signal.SIGHUP)
"""


def test_an_export_outlives_the_process_that_started_it(lora_run, tmp_path):
    project, run_id, _ = lora_run
    out = tmp_path / "adapter"
    starter = subprocess.run([sys.executable, "-c", STARTER, project, run_id, str(out)], capture_output=True,
                             text=True, timeout=120, cwd=REPO, env=dict(os.environ), start_new_session=True)
    assert starter.returncode == -signal.SIGHUP, starter.stderr
    folder = Path(starter.stdout.strip().splitlines()[-1])
    assert folder.parent == locations.export_jobs_dir(project, run_id)

    info = store.wait_job(folder, timeout=180)
    assert info.state == "completed", info.message
    events = ev.read_all(folder / layout.EVENTS)
    assert of_type(events, ev.Started) and of_type(events, ev.Status)
    assert [(a.path, a.size > 0) for a in of_type(events, ev.Artifact)] == [(str(out), True)]
    assert of_type(events, ev.Finished)[-1].output == str(out)
    assert (out / "adapter_config.json").exists() and (folder / layout.RESULT).exists()
    assert export_job.running(project, run_id) is None


@pytest.mark.gguf
def test_a_stopped_export_leaves_no_scratch_folder_and_the_next_export_may_use_its_folder(lora_run, tmp_path):
    project, run_id, _ = lora_run
    out = tmp_path / "gguf"
    folder = export_job.start(project, run_id, "gguf", out, ["Q8_0"], chat_check=False)
    assert export_job.running(project, run_id) == folder
    wait_for(lambda: layout.scratch(out).exists(), 120, "the merged scratch folder")
    export_job.stop(folder)

    events = list(export_job.follow(folder))
    assert isinstance(events[-1], ev.Finished) and events[-1].reason == "stopped"
    assert store.wait_job(folder, timeout=60).state == "stopped"
    assert not layout.scratch(out).exists()
    assert not out.exists()  # the half-written output is gone, so the same folder takes the next export
    assert export_job.running(project, run_id) is None
