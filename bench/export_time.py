"""How long a GGUF export of the embedded model (F16 + Q4_K_M, verified) takes, phase by phase.

Each run creates a project with the default base under a fresh WORKBENCH_HOME, runs
`workbench export-base` in a child process and reads the export job's events and the
`.verify.toml` reports: the wall time of the command, and the time between the events that
mark each phase (start and preflight, converter, each verification's steps, quantizer).
`--tree DIR` runs the workbench of another checkout (e.g. `git archive <commit> workbench | tar
-x -C DIR`) to compare it with this one in the same session; several trees alternate run by run.

    python bench/export_time.py [--runs 1] [--tree DIR ...] [--quant Q4_K_M]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NEW = "import sys; from workbench.cli.main import main; sys.exit(main(sys.argv[1:]))"

# The steps of one verification, each ending at the status line that starts the next.
VERIFY_STEPS = [
    ("metadata, Modelfile", "Running the transformers model"),
    ("transformers reference", "Loading the GGUF file"),
    ("llama.cpp load", "Running llama.cpp on the same tokens"),
    ("llama.cpp eval + compare", "Chat check"),
    ("chat check", None),  # ends at the verified file's artifact
]


def run_once(tree: Path, quant: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="export-time-") as home:
        env = dict(os.environ, WORKBENCH_HOME=home, HF_HUB_OFFLINE="1",
                   PYTHONPATH=os.pathsep.join(p for p in (str(tree), os.environ.get("PYTHONPATH", "")) if p))
        cli = [sys.executable, "-c", NEW]
        subprocess.run([*cli, "new", "p", "--base-model", "default"], env=env, cwd=home, check=True,
                       capture_output=True)
        started = time.perf_counter()
        out = subprocess.run([*cli, "export-base", "p", "--quant", quant], env=env, cwd=home,
                             capture_output=True, text=True)
        wall = time.perf_counter() - started
        if out.returncode != 0:
            raise SystemExit(f"export failed in {tree}:\n{out.stderr[-2000:]}")
        events_file = next(Path(home).glob("p/exports/jobs/*/events.jsonl"))
        events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
        reports = {p.name.removesuffix(".verify.toml"): tomllib.loads(p.read_text())
                   for p in Path(home).glob("p/exports/gguf/*.verify.toml")}
        return {"wall": wall, **phases(events), "reports": reports}


def phases(events: list[dict]) -> dict:
    """Seconds per phase, from the times of the job's events."""
    t0 = events[0]["time"]
    marks: list[tuple[str, float]] = []  # (what starts here, when)
    for e in events:
        if e["type"] == "status":
            marks.append((e["message"], e["time"]))
        elif e["type"] == "artifact":
            name = Path(e["path"]).name
            marks.append((("verified " if e.get("verification") else "written ") + name, e["time"]))
        elif e["type"] == "finished":
            marks.append(("finished", e["time"]))

    def at(prefix: str, after: float = 0.0) -> float:
        return next(t for m, t in marks if m.startswith(prefix) and t >= after)

    result = {"job": marks[-1][1] - t0, "start, preflight": at("Converting") - t0}
    result["convert"] = at("written ") - at("Converting")
    written = [(m.removeprefix("written "), t) for m, t in marks if m.startswith("written ")]
    for name, t in written:
        kind = name.removesuffix(".gguf").rsplit("-", 1)[-1].upper()
        if kind != "F16":
            result[f"quantize {kind}"] = t - at("Quantizing", result.get("_last", 0.0))
        done = at(f"verified {name}", t)
        begin = t
        for label, end_prefix in VERIFY_STEPS:
            end = at(end_prefix, begin) if end_prefix else done
            result[f"{kind}: {label}"] = end - begin
            begin = end
        result[f"{kind}: verify total"] = done - t
        result["_last"] = done
    result.pop("_last", None)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--tree", action="append", type=Path, help="a checkout to run (default: this one)")
    parser.add_argument("--quant", default="Q4_K_M")
    args = parser.parse_args()
    trees = args.tree or [REPO]
    results: dict[Path, list[dict]] = {tree: [] for tree in trees}
    for i in range(args.runs):
        for tree in trees:
            print(f"run {i + 1}/{args.runs}: {tree} (load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
            results[tree].append(run_once(tree, args.quant))
    keys = [k for k in results[trees[0]][0] if k != "reports"]
    print("| phase (s, median of %d) | %s |" % (args.runs, " | ".join(str(t) for t in trees)))
    print("| --- |" + " --- |" * len(trees))
    for key in keys:
        cells = [f"{statistics.median(r.get(key, 0.0) for r in results[t]):.1f}" for t in trees]
        print(f"| {key} | {' | '.join(cells)} |")
    for tree in trees:
        for name, report in results[tree][-1]["reports"].items():
            timings = report.get("timings")
            if timings:
                print(f"{tree}: {name} (last run): " + ", ".join(f"{k} {v}" for k, v in timings.items()))


if __name__ == "__main__":
    main()
