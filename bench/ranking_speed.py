"""How long a new ranking session on the demo takes to show its first cards, and candidates per second:
the sampler before the batched path (its code kept below as `before_sample`: transformers' sampling, one
group per call, 256 new tokens) against the sampler now (`workbench.ranking.sample.Sampler` over
`workbench.generate`, with the session's defaults resolved for the CPU), in one run on the same prompts.

In process, each path loads the embedded model (SmolLM2-135M-Instruct, fp32, the demo's own session
defaults: 4 candidates, temperature 1.0, top-p 0.95, the demo's first prompts in order) and samples
`--groups` groups; first cards = load + the first group, candidates/s = candidates / generation seconds.
With --worker (the default) a real session is then started as a person starts one (`workbench sample demo`,
a detached worker with its default threads) and timed from the command to its first group on disk.

    python bench/ranking_speed.py [--threads 2] [--groups 2] [--no-worker] [--also-256]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
HOME = Path(tempfile.mkdtemp(prefix="ranking-speed-"))
os.environ["WORKBENCH_HOME"] = str(HOME)
shutil.copytree(REPO / "projects" / "demo", HOME / "demo", ignore=shutil.ignore_patterns("runs", "evaluations"))

import torch

from workbench import models
from workbench import params as params_mod
from workbench import project as projects
from workbench.jobs import store
from workbench.ranking import sample as sampling
from workbench.ranking.sample_params import SampleParams
from workbench.run.spec import DataSource, JobSpec, Runtime


def before_sample(model, tokenizer, prompt, count: int, p: SampleParams, seed: int) -> tuple[list[str], int]:
    """The sampler's generation before this benchmark's change (commit ad8e20e), as it was."""
    inputs = tokenizer.apply_chat_template(sampling.as_messages(prompt), add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
    torch.manual_seed(seed)
    with torch.inference_mode():
        out = model.generate(**inputs, do_sample=True, temperature=p.temperature, top_p=p.top_p,
                             max_new_tokens=p.max_new_tokens, num_return_sequences=count,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    new = out[:, inputs["input_ids"].shape[1]:]
    return tokenizer.batch_decode(new, skip_special_tokens=True), int((new != tokenizer.pad_token_id).sum())


def demo_prompts(p: SampleParams) -> list:
    project = projects.load("demo")
    train = [DataSource(dataset=d.name, file=str(project.path / d.file), kind=d.kind)
             for d in project.datasets if d.split == "train"]
    return sampling.session_prompts(JobSpec(id="b", project="demo", method="sample", base_model="default",
                                            params={}, train=train), p)


def measure(name: str, folder: Path, p: SampleParams, prompts: list, groups: int, new_path: bool) -> dict:
    started = time.time()
    if new_path:
        sampler = sampling.Sampler(folder, "base", "float32", "cpu")
    else:
        model, tokenizer = models.load_causal_lm(folder).eval(), models.load_tokenizer(folder)
    load = time.time() - started
    seconds, tokens, first, longest = [], 0, None, 0
    for index in range(0, groups, p.prompt_batch):
        indices = list(range(index, min(groups, index + p.prompt_batch)))
        seeds = [sampling.group_seed(p.seed, i, 0) for i in indices]
        t = time.time()
        if new_path:
            answers = sampler.sample([prompts[i] for i in indices], p.n, p, seeds, stop=lambda: False)
        else:
            answers = [before_sample(model, tokenizer, prompts[indices[0]], p.n, p, seeds[0])]
        seconds.append(time.time() - t)
        first = first if first is not None else seconds[-1]
        tokens += sum(used for _, used in answers)
        longest = max(longest, *(len(a) for texts, _ in answers for a in texts))
        print(f"  {name}: group(s) {indices} in {seconds[-1]:.1f} s", flush=True)
    generation = sum(seconds)
    return {"path": name, "max_new_tokens": p.max_new_tokens, "load_s": load, "first_cards_s": load + first,
            "s_per_group": generation / groups, "candidates_per_s": groups * p.n / generation,
            "tokens_per_s": tokens / generation, "groups": groups}


def worker_first_cards(threads: int = 0, timeout: float = 900) -> dict:
    """`workbench sample demo` as a person starts it, to its first group on disk (then stopped); `threads`
    0 leaves the worker's threads to the launcher."""
    started = time.time()
    runtime = ["--set-runtime", f"threads={threads}"] if threads else []
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "sample", "demo", *runtime], capture_output=True,
                         text=True,
                         cwd=REPO, env=dict(os.environ), timeout=120, check=False)
    if out.returncode != 0:
        raise SystemExit(f"workbench sample failed: {out.stderr.strip()}")
    run_id = out.stdout.splitlines()[0].strip()
    run_dir = HOME / "demo" / "runs" / run_id
    found = None
    while time.time() - started < timeout:
        lines = (run_dir / "candidates.jsonl").read_text().splitlines() if (run_dir / "candidates.jsonl").exists() \
            else []
        if lines:
            found = time.time() - started
            break
        time.sleep(0.2)
    subprocess.run([sys.executable, "-m", "workbench.cli", "stop", "demo", run_id], capture_output=True,
                   cwd=REPO, env=dict(os.environ), timeout=120, check=False)
    store.wait("demo", run_id, timeout=120)  # job.toml holds the resolved params once the worker is done
    spec = (run_dir / "job.toml").read_text()
    notes = [line.strip() for line in spec.splitlines() if "Sampling on the" in line]
    return {"first_cards_s": found, "notes": notes, "run": run_id}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--groups", type=int, default=2, help="groups per path (the first one is the first cards)")
    ap.add_argument("--no-worker", action="store_true", help="skip the real session")
    ap.add_argument("--also-256", action="store_true", help="also the new path at the old 256 new tokens")
    ap.add_argument("--worker-threads", type=int, default=0, help="the real session's threads (0: its default)")
    ap.add_argument("--skip-before", action="store_true", help="only the sampler as it is now")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    folder = models.resolve("default")
    before = params_mod.build(SampleParams, {"max_new_tokens": 256, "prompt_batch": 1})
    after = params_mod.build(SampleParams, {})
    sampling.resolve_auto(after, JobSpec(id="b", project="demo", method="sample", base_model="default", params={},
                                         train=[], runtime=Runtime(device="cpu")))
    prompts = demo_prompts(after)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores, {args.threads} torch thread(s)")
    rows = [] if args.skip_before else [measure("before", folder, before, prompts, args.groups, new_path=False)]
    rows.append(measure("after", folder, after, prompts, args.groups, new_path=True))
    if args.also_256:
        rows.append(measure("after at 256", folder, before, prompts, args.groups, new_path=True))
    print(f"load average {os.getloadavg()[0]:.2f} after the in-process paths")
    print(f"\n{'path':<14}{'max new':>8}{'load s':>8}{'first cards s':>15}{'s/group':>9}{'cand/s':>8}{'tok/s':>7}")
    for r in rows:
        print(f"{r['path']:<14}{r['max_new_tokens']:>8}{r['load_s']:>8.1f}{r['first_cards_s']:>15.1f}"
              f"{r['s_per_group']:>9.1f}{r['candidates_per_s']:>8.3f}{r['tokens_per_s']:>7.1f}")
    if not args.no_worker:
        got = worker_first_cards(args.worker_threads)
        shown = "never (timed out)" if got["first_cards_s"] is None else f"after {got['first_cards_s']:.1f} s"
        print(f"\nworkbench sample demo (defaults, real worker, threads {args.worker_threads or 'default'}): "
              f"first cards {shown} "
              f"from the command; {' '.join(got['notes'])}")
    print(json.dumps({"rows": rows, "load_average": os.getloadavg()[0]}))
    shutil.rmtree(HOME, ignore_errors=True)


if __name__ == "__main__":
    main()
