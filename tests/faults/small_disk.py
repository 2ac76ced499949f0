"""Scenarios on a small filesystem of their own: `python -m tests.faults.small_disk SCENARIO MOUNT`,
run by `on_small_disk` inside a user and mount namespace (`unshare -rm`) in which MOUNT is a fresh
tmpfs of a few MB. Each prints one JSON object on its last line of stdout; the run folders vanish
with the namespace."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MB = 1_000_000
TRAIN = ["--set", "mode=full", "--set", "max_steps=6", "--set", "save_steps=2", "--set", "batch_size=2",
         "--set", "eval_steps=0", "--set", "logging_steps=1"]


def on_small_disk(scenario: str, mount: Path, size_mb: int, timeout: float = 240) -> dict:
    """Run `scenario` in a namespace where `mount` is a tmpfs of `size_mb` MB; its JSON answer."""
    mount.mkdir(parents=True, exist_ok=True)
    script = (f'mount -t tmpfs -o size={size_mb}m tmpfs "$1" && '
              f'exec "{sys.executable}" -m tests.faults.small_disk "{scenario}" "$1"')
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", str(mount)], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, env=dict(os.environ))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def leave_free(mount: Path, free: int) -> Path:
    """Fill `mount` so that `free` bytes stay free; the filler file."""
    filler = mount / "filler"
    room = shutil.disk_usage(mount).free - free
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.posix_fallocate(fd, 0, max(room, 1))
    finally:
        os.close(fd)
    return filler


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True,
                          cwd=REPO, env=dict(os.environ), timeout=200)


def project_on(mount: Path) -> str:
    """A project on the tiny model with 20 short chat records, its home on `mount`."""
    from workbench import project as projects
    from workbench.data.importer import import_file
    from workbench.testing import make_tiny_model, tiny_home

    os.environ["WORKBENCH_HOME"] = str(mount / "projects")
    model = make_tiny_model(tiny_home())
    projects.create("p", base_model=str(model))
    data = mount / "items.jsonl"
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"item {i}"},
                                                     {"role": "assistant", "content": "ok"}]}) + "\n"
                            for i in range(20)), encoding="utf-8")
    import_file("p", data)
    data.unlink()
    return "p"


def run_report(project: str, run_id: str) -> dict:
    from workbench import locations
    from workbench.jobs import store
    from workbench.run import events as ev

    folder = locations.run_dir(project, run_id)
    raw = (folder / "events.jsonl").read_bytes()
    found = ev.read_all(folder / "events.jsonl")
    errors = [e for e in found if isinstance(e, ev.Error)]
    return {
        "state": store.get(project, run_id).state,
        "error": errors[-1].message if errors else None,
        "kind": errors[-1].kind if errors else None,
        "checkpoints": sorted(p.name for p in (folder / "checkpoints").iterdir() if p.name != "README.md"),
        "whole_lines": raw.endswith(b"\n") and all(json.loads(line) for line in raw.splitlines()),
        "finished": [e.reason for e in found if isinstance(e, ev.Finished)],
        "reserve_left": (folder / ".space-reserve").exists(),
    }


def first_checkpoint_does_not_fit(mount: Path) -> dict:
    project = project_on(mount)
    leave_free(mount, 12 * MB)  # the first checkpoint takes about 22 MB
    done = cli("train", project, "--wait", *TRAIN)
    return {"rc": done.returncode, "stderr": done.stderr, **run_report(project, done.stdout.split()[0])}


def second_checkpoint_does_not_fit_then_resume(mount: Path) -> dict:
    project = project_on(mount)
    filler = leave_free(mount, 34 * MB)  # room for one checkpoint, not two
    done = cli("train", project, "--wait", *TRAIN)
    run_id = done.stdout.split()[0]
    before = {"rc": done.returncode, **run_report(project, run_id)}
    filler.unlink()
    resumed = cli("resume", project, run_id, "--wait")
    return {"before": before, "resume_rc": resumed.returncode, "resume_stderr": resumed.stderr,
            "after": run_report(project, run_id)}


def events_fill_the_disk(mount: Path) -> dict:
    """An event writer with its reserve, on a disk that fills between two events."""
    from workbench.run import disk
    from workbench.run import events as ev

    path = mount / "events.jsonl"
    writer = ev.EventWriter(path, reserve=True)
    writer.emit(ev.Status(message="before"))
    leave_free(mount, 0)
    raised, step = [], 0
    while step < 40 and not raised or step < (raised[0][0] + 3 if raised else 0):  # 1 KB lines, past the page
        try:
            writer.emit(ev.Status(message=f"step {step} " + "x" * 1000))
        except disk.DiskFull as exc:
            raised.append((step, str(exc)))
        step += 1
    writer.emit(ev.Error(message="the run's last words " + "x" * 2000, kind="disk_full"), sync=True)
    writer.close()
    raw = path.read_bytes()
    return {"raised": raised, "steps": step, "lines": [json.loads(line)["type"] for line in raw.splitlines()],
            "ends_with_newline": raw.endswith(b"\n"), "reserve_left": (mount / ".space-reserve").exists()}


if __name__ == "__main__":
    scenario, mount = sys.argv[1], Path(sys.argv[2])
    print(json.dumps(globals()[scenario](mount)))
