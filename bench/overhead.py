"""The workbench's overhead over plain TRL: SFT+LoRA on the demo project, side by side.

Each round runs `workbench train` on a copy of the demo project (its chat records, LoRA r=16
on all linear layers, the demo's batch, length and schedule) and `bench/plain_trl.py`, the same
training written as TRL's documentation writes it, with the same model, records in the same
order, thread count and seed; rounds alternate the two so that the load of a shared machine
falls on both. Reported: seconds per step (median over the steps after the first two), the
ratio workbench / plain, the time from the command to its first step and from the model being
loaded to the first step, the loss of each step (the two should match: same batches, same
LoRA initialisation), and each process's peak RSS. Both run in their own session with the same
thread settings; CPU seconds per step are reported beside wall seconds, since on a machine shared
with other work the wall time of a step follows the load more than the code.

    .venv/bin/python bench/overhead.py [--steps 12] [--rounds 2] [--threads N] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "projects" / "demo"
TRAIN_FILE = DEMO / "datasets" / "citations-train.jsonl"
WARMUP_STEPS = 2  # steps left out of the s/step median (allocations, first-call costs)


class Watch(threading.Thread):
    """A process and its children, sampled every 0.1 s until `stop`: the largest RSS, and the CPU time they
    used by each moment (on a shared machine, CPU seconds per step vary less than wall seconds)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, threading.Event()
        self.cpu: list[tuple[float, float]] = []  # (time, CPU seconds so far)

    def run(self) -> None:
        try:
            proc = psutil.Process(self.pid)
            while not self.done.is_set():
                family = [proc, *proc.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in family))
                self.cpu.append((time.time(), sum(sum(p.cpu_times()[:2]) for p in family)))
                time.sleep(0.1)
        except psutil.NoSuchProcess:
            pass

    def cpu_at(self, moment: float) -> float:
        """The CPU seconds used by `moment` (the last sample at or before it)."""
        found = [c for t, c in self.cpu if t <= moment]
        return found[-1] if found else 0.0

    def stop(self) -> int:
        self.done.set()
        self.join()
        return self.peak


def summary(start: float, loaded: float | None, steps: list[dict], watch: Watch, label: str, state: str) -> dict:
    times = [s["time"] for s in steps]
    gaps = [b - a for a, b in zip(times, times[1:])][WARMUP_STEPS - 1:]
    cpu = [watch.cpu_at(b) - watch.cpu_at(a) for a, b in zip(times, times[1:])][WARMUP_STEPS - 1:]
    tokens = [b["tokens"] - a["tokens"] for a, b in zip(steps, steps[1:]) if a.get("tokens") and b.get("tokens")]
    return {"label": label, "state": state, "s_per_step": statistics.median(gaps) if gaps else float("nan"),
            "cpu_per_step": statistics.median(cpu) if cpu else float("nan"),
            "first_step": times[0] - start if times else float("nan"),
            "loaded_to_first": times[0] - loaded if times and loaded else float("nan"),
            "tokens_per_step": statistics.median(tokens) if tokens else float("nan"),
            "losses": [s["loss"] for s in steps], "peak_rss": watch.peak}


def workbench_run(name: str, steps: int, values: list[str], env: dict, tree: Path | None = None) -> dict:
    from workbench.jobs import store
    from workbench.run import events as ev
    from workbench.run import layout, liveness
    from workbench import locations

    sets = [f"max_steps={steps}", "batch_size=4", "max_length=256", "eval_fraction=0", "eval_steps=0",
            f"save_steps={steps * 100}", "logging_steps=1", *values]
    args = [sys.executable, "-m", "workbench.cli", "train", name, "--dataset", "citations-train"]
    if tree is not None:  # the workbench of another checkout (the same venv): its CLI, and the worker it starts
        env = {**env, "PYTHONPATH": str(tree)}
    for s in sets:
        args += ["--set", s]
    start = time.time()
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, cwd=tree or REPO)
    if done.returncode != 0:
        raise SystemExit(f"workbench train failed: {done.stderr.strip()}")
    run_id = done.stdout.strip().splitlines()[-1]
    run_dir = locations.run_dir(name, run_id)
    watch = Watch(liveness.read_pid(run_dir))
    watch.start()
    info = store.wait(name, run_id, poll=0.2)
    watch.stop()
    events = list(ev.read_all(run_dir / layout.EVENTS))
    loading = [i for i, e in enumerate(events) if isinstance(e, ev.Status) and e.message.startswith("Loading ")
               and e.message != "Loading the libraries"]
    loaded = events[loading[-1] + 1].time if loading else None
    logs = [{"time": e.time, "loss": e.loss, "tokens": e.tokens_seen} for e in events if isinstance(e, ev.Log)]
    notes = [e.message for e in events if isinstance(e, ev.Status)]
    out = summary(start, loaded, logs, watch, f"workbench {tree.name}" if tree else "workbench", info.state)
    out["statuses"] = notes
    return out


def plain_run(model: Path, data: Path, steps: int, threads: int, env: dict, tmp: Path) -> dict:
    out = tmp / f"plain-{time.time_ns()}.json"
    args = [sys.executable, str(REPO / "bench" / "plain_trl.py"), str(model), str(data), str(out),
            "--steps", str(steps), "--threads", str(threads)]
    start = time.time()
    # in its own session, as the workbench's worker is (the scheduler groups a session's processes)
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    watch = Watch(proc.pid)
    watch.start()
    _, err = proc.communicate(timeout=1800)
    watch.stop()
    if proc.returncode != 0:
        raise SystemExit(f"plain TRL failed: {err.strip().splitlines()[-1] if err.strip() else proc.returncode}")
    got = json.loads(out.read_text())
    return summary(start, got["loaded"], got["steps"], watch, "plain TRL", "completed")


def main() -> None:
    from workbench import models
    from workbench.run.spec import default_threads

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a parameter of the workbench's run only (to measure an option)")
    parser.add_argument("--compare-tree", type=Path,
                        help="also run the workbench of this folder (made by `git archive REV workbench | tar -x -C DIR`)")
    args = parser.parse_args()
    model = models.resolve("default")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "WORKBENCH_HOME": str(tmp / "home"), "HF_HUB_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false", **{var: str(args.threads) for var in (
                   "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}  # as the launcher sets them
        os.environ["WORKBENCH_HOME"] = env["WORKBENCH_HOME"]
        (tmp / "home").mkdir()
        results: list[dict] = []
        for r in range(args.rounds):
            name = f"overhead{r}"
            shutil.copytree(DEMO, tmp / "home" / name)
            toml = tmp / "home" / name / "project.toml"
            toml.write_text(toml.read_text().replace('name = "demo"', f'name = "{name}"'))
            runs = [lambda: workbench_run(name, args.steps, args.set, env),
                    lambda: plain_run(model, TRAIN_FILE, args.steps, args.threads, env, tmp)]
            if args.compare_tree:
                runs.append(lambda: workbench_run(name, args.steps, args.set, env, args.compare_tree.resolve()))
            for run in (runs if r % 2 == 0 else runs[::-1]):
                results.append(run())
                got = results[-1]
                print(f"  round {r + 1}: {got['label']}: {got['s_per_step']:.3f} s/step, {got['cpu_per_step']:.2f} CPU "
                      f"s/step, first step after "
                      f"{got['first_step']:.1f} s ({got['loaded_to_first']:.1f} s after the model loaded), peak "
                      f"RSS {got['peak_rss'] / 2**30:.2f} GiB", file=sys.stderr, flush=True)
    report(results, args)


def report(results: list[dict], args) -> None:
    print(f"SFT+LoRA on the demo (batch 4, max_length 256, LoRA r=16 all-linear), {args.steps} steps, "
          f"{args.threads} threads, {args.rounds} rounds alternating, cpu_count={os.cpu_count()}"
          + (f", workbench --set {' '.join(args.set)}" if args.set else ""))
    print("| run | s/step | CPU s/step | tokens/step | command to step 1 | model loaded to step 1 | peak RSS |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['label']} | {r['s_per_step']:.3f} | {r['cpu_per_step']:.2f} | {r['tokens_per_step']:.0f} | "
              f"{r['first_step']:.1f} s | {r['loaded_to_first']:.1f} s | {r['peak_rss'] / 2**30:.2f} GiB |")
    rounds = [results[i:i + len(results) // args.rounds] for i in range(0, len(results), len(results) // args.rounds)]
    plain = [next(r for r in group if r["label"] == "plain TRL") for group in rounds]
    for label in dict.fromkeys(r["label"] for r in results if r["label"] != "plain TRL"):
        mine = [next(r for r in group if r["label"] == label) for group in rounds]
        ratios = [w["s_per_step"] / p["s_per_step"] for w, p in zip(mine, plain)]
        cpu = [w["cpu_per_step"] / p["cpu_per_step"] for w, p in zip(mine, plain)]
        memory = [w["peak_rss"] / p["peak_rss"] for w, p in zip(mine, plain)]
        diff = max(max((abs(a - b) for a, b in zip(w["losses"], p["losses"])), default=float("nan"))
                   for w, p in zip(mine, plain))
        print(f"{label} / plain TRL: s/step {', '.join(f'{x:.3f}' for x in ratios)} per round (median "
              f"{statistics.median(ratios):.3f}; goal <= 1.03), CPU s/step {', '.join(f'{x:.3f}' for x in cpu)} "
              f"(median {statistics.median(cpu):.3f}), peak RSS {statistics.median(memory):.2f}, "
              f"largest per-step loss difference {diff:.4f} (same batches and LoRA start: near 0)")
    for r in results[:len(rounds[0])]:
        print(f"losses {r['label']}: {' '.join(f'{x:.3f}' for x in r['losses'])}")

if __name__ == "__main__":
    main()
