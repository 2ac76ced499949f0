"""The playground on the embedded model (SmolLM2-135M-Instruct): first-token latency and tokens/s of a warm
server, transformers (the dequantized HF folder, fp32) against its GGUF in llama.cpp (the Q4_1 file the
package ships), plus the time from start to a listening server.

Each server is a real detached process (`workbench.serve`), asked through its socket as the screen asks it:
one warm-up answer, then `--prompts` greedy answers of up to `--tokens` tokens. First token is from the
request sent to the first token received; tokens/s counts the tokens after the first over the time after it.

    python bench/playground_latency.py [--prompts 5] [--tokens 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WORKBENCH_HOME", tempfile.mkdtemp(prefix="playground-bench-"))

from workbench import models
from workbench import project as projects
from workbench.serve import launch
from workbench.serve.params import chat_params

PROMPTS = [
    "What is the capital of France?",
    "Give me three tips for a good night's sleep.",
    "Turn this citation into JSON with title, author and year: Orwell, George. Nineteen Eighty-Four. 1949.",
    "Explain what a hash table is in two sentences.",
    "Write a haiku about autumn.",
]


def measure(ref: str, prompts: int, tokens: int, threads: int) -> dict:
    started = time.perf_counter()
    handle = launch.start("bench", ref, idle_minutes=10, threads=threads)
    ready = time.perf_counter() - started
    params = chat_params({"temperature": 0, "max_new_tokens": tokens})
    try:
        with handle.connect() as client:
            client.ask([{"role": "user", "content": "Hello!"}], params)  # warm-up
            done = [client.ask([{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}], params)
                    for i in range(prompts)]
            backend = client.hello["backend"]
    finally:
        launch.end(handle.folder)
    return {"backend": backend, "ready_s": ready,
            "first": statistics.median(d["first_token_s"] for d in done),
            "first_max": max(d["first_token_s"] for d in done),
            "speed": statistics.median(d["tokens_per_s"] for d in done if d["tokens_per_s"]),
            "tokens": statistics.mean(d["tokens"] for d in done)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=launch.default_threads())
    args = parser.parse_args()
    if "bench" not in [p.name for p in projects.list_projects()]:
        projects.create("bench", base_model="default")
    models.resolve("default")  # the one-time conversion is not part of a server's start
    print("| model | served by | start to listening | first token (median / max) | tokens/s (median) | tokens |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, ref in (("SmolLM2-135M-Instruct, fp32 HF folder", "base"),
                       (f"{models.DEFAULT_GGUF} (shipped)", str(models.default_gguf()))):
        r = measure(ref, args.prompts, args.tokens, args.threads)
        print(f"| {label} | {r['backend']} | {r['ready_s']:.1f} s | {r['first'] * 1000:.0f} / "
              f"{r['first_max'] * 1000:.0f} ms | {r['speed']:.1f} | {r['tokens']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
