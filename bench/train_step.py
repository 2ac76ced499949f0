"""Seconds per training step and worker peak memory, SFT+LoRA on the embedded model.

Runs the real worker on the demo data, once per thread count, side by side in one
invocation so the figures compare (this machine is noisy; read ratios, not absolutes).

    .venv/bin/python bench/train_step.py [--steps 20] [--threads 1,2] [--model default]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import psutil

from workbench.registry.specs import make_spec
from workbench.run import liveness

REPO = Path(__file__).resolve().parent.parent


def peak_rss(pid: int, stop: threading.Event, out: list[int]) -> None:
    peak = 0
    try:
        proc = psutil.Process(pid)
        while not stop.is_set():
            rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
            peak = max(peak, rss)
            time.sleep(0.2)
    except psutil.NoSuchProcess:
        pass
    out.append(peak)


def one_run(threads: int, steps: int, model: str, batch: int, max_length: int) -> dict:
    from workbench import project
    from workbench.jobs import launch, store
    from workbench.run import events as ev
    from workbench.run.spec import Runtime

    name = f"bench-t{threads}"
    home = Path(os.environ["WORKBENCH_HOME"])
    shutil.copytree(REPO / "projects" / "demo", home / name)
    toml = (home / name / "project.toml").read_text().replace('name = "demo"', f'name = "{name}"')
    (home / name / "project.toml").write_text(toml)
    if model != "default":
        p = project.load(name)
        p.base_model = model
        p.save()
    spec = make_spec(name, "sft", {"max_steps": str(steps), "batch_size": str(batch),
                                          "max_length": str(max_length), "eval_steps": "0",
                                          "save_steps": str(steps * 10)},
                            runtime=Runtime(threads=threads))
    run_dir = launch.start(spec)
    stop, peaks = threading.Event(), []
    watcher = threading.Thread(target=peak_rss, args=(liveness.read_pid(run_dir), stop, peaks))
    watcher.start()
    info = store.wait(name, spec.id, poll=0.5)
    stop.set()
    watcher.join()
    logs = [e for e in ev.read_all(run_dir / "events.jsonl") if isinstance(e, ev.Log)]
    gaps = [b.time - a.time for a, b in zip(logs, logs[1:])][2:]  # skip warm-up steps
    tps = [e.tokens_per_s for e in logs[3:] if e.tokens_per_s]
    return {"threads": threads, "state": info.state, "s_per_step": statistics.median(gaps) if gaps else float("nan"),
            "tokens_per_s": statistics.median(tps) if tps else float("nan"), "peak_rss_gib": peaks[0] / 2**30}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--model", default="default")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["WORKBENCH_HOME"] = tmp
        results = [one_run(int(t), args.steps, args.model, args.batch_size, args.max_length)
                   for t in args.threads.split(",")]
    base = results[0]["s_per_step"]
    print(f"SFT+LoRA, model={args.model}, batch={args.batch_size}, max_length={args.max_length}, "
          f"{args.steps} steps, cpu_count={os.cpu_count()}")
    for r in results:
        print(f"  threads={r['threads']}: {r['s_per_step']:.3f} s/step ({base / r['s_per_step']:.2f}x of first), "
              f"{r['tokens_per_s']:.0f} tokens/s, worker peak RSS {r['peak_rss_gib']:.2f} GiB, {r['state']}")


if __name__ == "__main__":
    main()
