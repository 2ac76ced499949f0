"""kill -9 at random points of a training run, then resume: does every resume start from the last
complete checkpoint, and does the loss go on bit for bit as if nothing had happened?

A reference run trains without interruption. The same spec then runs again and its worker (the whole
process group) is killed with SIGKILL N times, each at a point of one of three kinds, in turn:
  - step: after a random delay while steps run;
  - checkpoint: while a checkpoint is being written (its staging folder exists);
  - eval: just after the log of an evaluation step, while the evaluation runs;
and resumed after each kill. At the end, the loss logged for each step by the life that kept it (the
last life that logged the step) must equal the reference's exactly, each resume must have started from
the newest complete checkpoint there was at the kill, and no staging folder may be left.

    .venv/bin/python bench/kill9.py [--kills 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

STEPS, SAVE, EVAL = 90, 3, 6
VALUES = {"mode": "full", "max_steps": STEPS, "save_steps": SAVE, "eval_steps": EVAL, "logging_steps": 1,
          "batch_size": 2, "learning_rate": 1e-3, "warmup": 0}


def make_project(home: Path) -> str:
    from workbench import project as projects
    from workbench.data.importer import import_file
    from workbench.testing import make_tiny_model, tiny_home

    model = make_tiny_model(tiny_home())
    projects.create("k", base_model=str(model))
    for name, split, first in (("items", "train", 0), ("held", "eval", 1000)):
        path = home / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"messages": [
            {"role": "user", "content": f"Catalogue item {i}."},
            {"role": "assistant", "content": f'{{"id": {i}, "kind": "book"}}'}]}) + "\n"
            for i in range(first, first + (40 if split == "train" else 8))), encoding="utf-8")
        import_file("k", path, split=split)
    return "k"


def new_run(project: str) -> str:
    from workbench.jobs import launch
    from workbench.registry.specs import make_spec

    spec = make_spec(project, "sft", dict(VALUES))
    spec.runtime.threads = 1
    launch.start(spec)
    return spec.id


def events(project: str, run_id: str):
    from workbench import locations
    from workbench.run import events as ev

    return ev.read_all(locations.run_dir(project, run_id) / "events.jsonl")


def wait_end(project: str, run_id: str) -> None:
    from workbench.jobs import store

    info = store.wait(project, run_id, timeout=900, poll=0.2)
    if info.state != "completed":
        raise SystemExit(f"run {run_id} ended {info.state}: {info.message}")


def kept_losses(found) -> dict[int, float]:
    """step -> the loss logged by the last life that logged it."""
    from workbench.run import events as ev

    return {e.step: e.loss for e in found if isinstance(e, ev.Log)}


def kill_at(project: str, run_id: str, kind: str, rng: random.Random, deadline: float) -> str | None:
    """Kill the run's worker at a point of `kind`; the kind it was really killed in, or None (it ended)."""
    from workbench import locations
    from workbench.jobs import store
    from workbench.run import events as ev
    from workbench.run import layout

    folder = locations.run_dir(project, run_id)
    staging = folder / layout.CHECKPOINTS / layout.STAGING
    info = store.get(project, run_id)
    pid = info.pid
    start_logs = len([e for e in events(project, run_id) if isinstance(e, ev.Log)])
    if kind == "step":
        wait = rng.uniform(0.5, 3.0)
    while time.time() < deadline:
        if store.get(project, run_id).state in ("completed", "failed"):
            return None
        found = events(project, run_id)
        logs = [e for e in found if isinstance(e, ev.Log)]
        if kind == "checkpoint" and staging.exists():
            break
        if kind == "eval" and len(logs) > start_logs and logs[-1].step % EVAL == 0 and not any(
                isinstance(e, ev.Eval) and e.step == logs[-1].step for e in found):
            break
        if kind == "step" and len(logs) > start_logs:
            time.sleep(wait)
            break
        time.sleep(0.002 if kind != "step" else 0.05)
    really = "checkpoint" if staging.exists() else kind
    try:
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    except ProcessLookupError:
        return None
    for _ in range(500):
        if store.get(project, run_id).state == "lost":
            break
        time.sleep(0.02)
    return really


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    home = Path(tempfile.mkdtemp(prefix="wb-kill9-"))
    os.environ["WORKBENCH_HOME"] = str(home / "projects")
    from workbench import locations
    from workbench.jobs import launch, store
    from workbench.run import events as ev
    from workbench.run import layout

    project = make_project(home)
    t0 = time.time()
    reference = new_run(project)
    wait_end(project, reference)
    ref_losses = kept_losses(events(project, reference))
    ref_seconds = time.time() - t0

    run_id = new_run(project)
    folder = locations.run_dir(project, run_id)
    kinds = ["step", "checkpoint", "eval"]
    done: list[dict] = []
    t0 = time.time()
    while len(done) < args.kills:
        kind = kinds[len(done) % 3]
        really = kill_at(project, run_id, kind, rng, time.time() + 120)
        if really is None:
            break
        latest = layout.latest_checkpoint(folder)
        done.append({"asked": kind, "at": really, "latest": latest.name if latest else None,
                     "staging_left": (folder / layout.CHECKPOINTS / layout.STAGING).exists()})
        if latest is None:  # killed before the first checkpoint: a resume has nothing to start from
            raise SystemExit("killed before the first checkpoint; raise the first wait")
        launch.resume(project, run_id)
    wait_end(project, run_id)
    chaos_seconds = time.time() - t0
    found = events(project, run_id)
    starts = [e for e in found if isinstance(e, ev.Started)][1:]
    resumed_right = sum(1 for kill, start in zip(done, starts)
                        if start.resumed_from and Path(start.resumed_from).name == kill["latest"])
    losses = kept_losses(found)
    same = sum(1 for step, loss in ref_losses.items() if losses.get(step) == loss)
    leftovers = sorted(p.name for p in (folder / layout.CHECKPOINTS).iterdir()
                       if not layout.is_complete_checkpoint(p) and p.name != "README.md")
    counts = ", ".join(f"{k}={sum(d['at'] == k for d in done)}" for k in kinds)
    print(f"kills: {len(done)} ({counts})")
    print(f"resumed from the newest complete checkpoint: {resumed_right}/{len(done)}")
    print(f"steps whose loss equals the uninterrupted run's bit for bit: {same}/{len(ref_losses)}")
    print(f"incomplete checkpoint folders left: {leftovers or 'none'}; staging seen right after a kill: "
          f"{sum(d['staging_left'] for d in done)}")
    print(f"state: {store.get(project, run_id).state}; reference {ref_seconds:.0f} s, "
          f"with {len(done)} kills {chaos_seconds:.0f} s")
    ok = resumed_right == len(done) == args.kills and same == len(ref_losses) and not leftovers
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
