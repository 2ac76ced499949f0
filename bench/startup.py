"""How long `workbench` takes from launch to its first frame, in a fresh process each time.

Each run starts `python -c ...`, builds the app the CLI builds and exits right after the
first refresh; the launch-to-first-frame time is read against the wall clock the parent
noted before spawning. Also reported: the import time of `screens.app` alone.

    python bench/startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from screens.app import WorkbenchApp
imported = time.perf_counter() - t0
result = {"import_s": imported}

class FirstFrame(WorkbenchApp):
    def on_mount(self):
        self.call_after_refresh(self.first_frame)

    def first_frame(self):
        result["frame_wall"] = time.time()
        self.exit()

FirstFrame().run(headless=True, size=(120, 36))
print(json.dumps(result))
"""


def one_run() -> dict[str, float]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    start = time.time()
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, check=True,
                         cwd=REPO)
    ended = time.time()
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"first_frame_s": result["frame_wall"] - start, "import_s": result["import_s"],
            "process_s": ended - start}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    one_run()  # warm the file cache and the bytecode cache
    runs = [one_run() for _ in range(args.runs)]
    print(f"workbench startup over {args.runs} fresh processes (median, min-max):")
    for key, label in (("first_frame_s", "launch to first frame"), ("import_s", "import screens.app"),
                       ("process_s", "whole process (to exit)")):
        values = [r[key] * 1000 for r in runs]
        print(f"  {label:<24} {statistics.median(values):7.0f} ms   ({min(values):.0f}-{max(values):.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
