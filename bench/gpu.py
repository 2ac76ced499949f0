"""SFT on a GPU: tokens/s, peak GPU memory and MFU, workbench vs plain TRL, each fast-path option on and off.

Models of a real architecture (Qwen2.5-0.5B and -1.5B shapes) are built from their config with random
weights when their weights are not on the machine: speed and memory do not depend on the values. The
tokenizer is the embedded model's (its ids fit the larger vocabulary). Data: the demo's citations.
Each row is one real run in a fresh process: the workbench through `workbench train` (its worker, its
defaults: LoRA, bf16, flash-attention with packing when installed (else SDPA unpacked), Liger when installed), the plain TRL script
(`bench/plain_trl.py --gpu`, TRL's defaults: bf16, gradient checkpointing, no packing). Figures:
tokens/s (trained, non-padding tokens; median of the logged steps after the first `WARMUP`), peak GPU
memory (NVML, what nvidia-smi shows: the process's context, weights, activations and allocator cache),
MFU = tokens/s x FLOPs per token / the GPU's peak bf16 FLOP/s, with FLOPs per token = 6N (full) or 4N
(LoRA/QLoRA: no weight gradients of the frozen base) + 12 x layers x hidden x sequence (attention).
With several GPUs, LoRA also runs on all of them (`--processes N`) and a GRPO step is timed.

    .venv/bin/python bench/gpu.py [--models 0.5b,1.5b] [--steps 30] [--out results.json] [--only ROW,...]
    .venv/bin/python bench/gpu.py --smoke      # CPU: the tiny model, two short rows (what `make test` runs)

Needs CUDA, except with --smoke; a row that cannot run (bitsandbytes or liger-kernel missing, an
out-of-memory) is printed as failed with its one-line reason and the others go on.
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

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "projects" / "demo" / "datasets" / "citations-train.jsonl"
WARMUP = 3  # logged steps left out of the median (compilation, allocator warm-up)

# Qwen2.5 shapes (config.json of the published models); the vocabulary is the real one.
SHAPES = {
    "0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, tie_word_embeddings=True),
    "1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                 num_key_value_heads=2, tie_word_embeddings=True),
}
QWEN = dict(vocab_size=151936, max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6,
            hidden_act="silu", model_type="qwen2")

# Peak dense bf16 tensor FLOP/s by GPU name (vendor datasheets); --peak-tflops for others.
PEAK_TFLOPS = {"H200": 989, "H100": 989, "GH200": 989, "A100": 312, "L40S": 362, "L40": 181, "A6000": 155,
               "RTX 6000 Ada": 364, "4090": 165, "3090": 71, "A10G": 70, "A10": 125, "L4": 121, "V100": 125,
               "T4": 65}

# (row name, runner, mode, workbench --set values or plain flags); the workbench defaults are `auto`. In three
# tiers, each run for every model before the next: what the goals read first (workbench vs plain TRL, QLoRA vs
# bf16 LoRA), then full fine-tuning and GRPO, then each fast-path option alone, so a budget cut keeps the first.
TIERS = [
    [("wb lora (defaults)", "workbench", "lora", {}),
     ("plain TRL lora (defaults)", "plain", "lora", {}),
     ("wb qlora (defaults)", "workbench", "qlora", {}),
     ("wb lora all off", "workbench", "lora", {"packing": "off", "attention": "sdpa", "liger": "off"})],
    [("wb full (defaults)", "workbench", "full", {}),
     ("plain TRL full (defaults)", "plain", "full", {}),
     ("plain TRL qlora (defaults)", "plain", "qlora", {}),
     ("wb grpo step", "workbench", "lora", {"_extra": ["--method", "grpo"], "rewards": "json", "max_steps": 6,
                                            "num_generations": "8", "max_completion_length": "128"})],
    [("wb lora packing=on", "workbench", "lora", {"packing": "on"}),  # SDPA packed, where flash-attn is absent
     ("wb lora attention=sdpa", "workbench", "lora", {"attention": "sdpa"}),
     ("wb lora liger=off", "workbench", "lora", {"liger": "off"}),
     ("wb lora compile", "workbench", "lora", {"compile": "true"})],
]


class GPUPeak(threading.Thread):
    """The largest GPU memory in use (NVML, every GPU summed) while it runs, less what was in use before."""

    def __init__(self):
        super().__init__(daemon=True)
        import pynvml

        pynvml.nvmlInit()
        self.nvml = pynvml
        self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        self.base = self.used()
        self.peak = 0
        self.done = threading.Event()

    def used(self) -> int:
        return sum(self.nvml.nvmlDeviceGetMemoryInfo(h).used for h in self.handles)

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, self.used() - self.base)
            time.sleep(0.05)

    def stop(self) -> int:
        self.done.set()
        self.join()
        return self.peak


def build_model(name: str, folder: Path, tiny: bool = False) -> Path:
    """A model folder of `name`'s shape with random weights (bf16) and the embedded model's tokenizer."""
    out = folder / f"random-{name}"
    if (out / "config.json").exists():
        return out
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    from workbench.testing import embedded_tokenizer, make_tiny_model

    if tiny:
        return make_tiny_model(out)
    tokenizer = embedded_tokenizer()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    config = Qwen2Config(**QWEN, **SHAPES[name], bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    config.dtype = "bfloat16"
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def params_of(folder: Path) -> tuple[int, int, int]:
    """(parameters, layers, hidden) from the model's config (tied embeddings counted once)."""
    config = json.loads((folder / "config.json").read_text())
    h, i, n, v = (config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"],
                  config["vocab_size"])
    kv = h // config["num_attention_heads"] * config.get("num_key_value_heads", config["num_attention_heads"])
    per_layer = h * h * 2 + h * kv * 2 + 3 * h * i + 2 * h
    return n * per_layer + v * h * (1 if config.get("tie_word_embeddings") else 2) + h, n, h


def mfu(tokens_per_s: float, folder: Path, mode: str, seq: int, peak_tflops: float | None) -> float | None:
    if not peak_tflops or not tokens_per_s:
        return None
    n, layers, hidden = params_of(folder)
    per_token = (6 if mode == "full" else 4) * n + 12 * layers * hidden * seq
    return tokens_per_s * per_token / (peak_tflops * 1e12)


def workbench_row(home: Path, model: Path, mode: str, values: dict, steps: int, batch: int, length: int,
                  extra: list[str]) -> dict:
    from workbench import project
    from workbench.data.importer import import_file
    from workbench.run import events as ev

    from workbench import params, registry

    name = f"p{time.time_ns()}"
    project.create(name, base_model=str(model))
    import_file(name, DEMO)
    method = extra[extra.index("--method") + 1] if "--method" in extra else "sft"
    known = {info.name for info in params.describe(registry.get(method).params)}
    sets = {"mode": mode, "max_steps": steps, "batch_size": batch, "max_length": length, "eval_fraction": 0,
            "save_steps": steps * 100, "logging_steps": 1, "learning_rate": 1e-4 if mode != "full" else 1e-5,
            **values}
    args = [sys.executable, "-m", "workbench.cli", "train", name, "--wait", *extra]
    for key, value in sets.items():
        if key in known:  # a method without packing or max_length (GRPO) leaves them out
            args += ["--set", f"{key}={value}"]
    done = subprocess.run(args, capture_output=True, text=True, cwd=REPO, env=dict(os.environ))
    runs = sorted((home / name / "runs").iterdir())
    events = ev.read_all(runs[-1] / "events.jsonl") if runs else []
    logs = [e for e in events if isinstance(e, ev.Log)]
    if done.returncode != 0:
        errors = [e.message for e in events if isinstance(e, ev.Error)]
        raise RuntimeError((errors[-1] if errors else done.stderr.strip().splitlines()[-1]).splitlines()[0])
    rates = [e.tokens_per_s for e in after_warmup(logs) if e.tokens_per_s]
    times = [e.time for e in after_warmup(logs)]
    spec = (runs[-1] / "job.toml").read_text()
    chosen = {k: line.split("=", 1)[1].strip().strip('"') for line in spec.splitlines()
              for k in ("packing", "attention", "liger") if line.startswith(f"{k} =")}
    return {"tokens_per_s": statistics.median(rates) if rates else 0.0, "chosen": chosen, "s_per_step": gap(times),
            "loss": logs[-1].loss if logs else None}


def after_warmup(items: list) -> list:
    """The logged steps after the first WARMUP, or after the first alone when a short run has too few."""
    return items[WARMUP:] if len(items) > WARMUP + 2 else items[1:]


def gap(times: list[float]) -> float:
    """The median time between consecutive logged steps (NaN with fewer than two)."""
    gaps = [b - a for a, b in zip(times, times[1:])]
    return statistics.median(gaps) if gaps else float("nan")


def plain_row(model: Path, mode: str, steps: int, batch: int, length: int, tmp: Path, gpu: bool) -> dict:
    out = tmp / f"plain-{time.time_ns()}.json"
    args = [sys.executable, str(REPO / "bench" / "plain_trl.py"), str(model), str(DEMO), str(out), "--steps",
            str(steps), "--batch-size", str(batch), "--max-length", str(length), "--mode", mode]
    args += ["--gpu", "--gradient-checkpointing"] if gpu else []
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}")
    got = json.loads(out.read_text())
    steps_ = after_warmup(got["steps"])
    rates = [(b["tokens"] - a["tokens"]) / (b["time"] - a["time"]) for a, b in zip(steps_, steps_[1:])
             if b["time"] > a["time"]]
    return {"tokens_per_s": statistics.median(rates) if rates else 0.0, "chosen": {},
            "s_per_step": gap([s["time"] for s in steps_]), "loss": got["steps"][-1]["loss"]}


def gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0)


def peak_of(name: str, given: float | None) -> float | None:
    return given or next((v for k, v in PEAK_TFLOPS.items() if k.lower() in name.lower()), None)


def run_rows(tiers, models: list[str], args, tmp: Path, smoke: bool) -> list[dict]:
    """Each tier's rows for every model, then the next tier's; with a budget, a row whose expected time (the
    longest row of its model so far, or 1.5x the longest of any) would overrun it is skipped and said so."""
    results, folders, started_all = [], {}, time.time()
    peak_tflops = None if smoke else peak_of(gpu_name(), args.peak_tflops)
    for tier in tiers:
        for model_name in models:
            for row, runner, mode, values in tier:
                if args.only and row not in args.only:
                    continue
                if args.budget and over_budget(results, model_name, time.time() - started_all, args.budget):
                    print(f"| {model_name} | {row} | skipped: the budget ({args.budget:.0f} s) would be overrun "
                          "| | | | |", flush=True)
                    continue
                started = time.time()
                if model_name not in folders:
                    folders[model_name] = build_model(model_name, tmp / "models", tiny=smoke)
                got = one_row(folders[model_name], runner, mode, values, args, tmp, smoke)
                got.update(model=model_name, row=row, mode=mode, seconds=time.time() - started,
                           mfu=mfu(got["tokens_per_s"], folders[model_name], mode, args.max_length, peak_tflops))
                results.append(got)
                print(line(got), flush=True)
                if args.out:  # after every row: a run cut short keeps what it measured
                    args.out.write_text(json.dumps(results, indent=1))
    return results


def over_budget(results: list[dict], model: str, elapsed: float, budget: float) -> bool:
    same = [r["seconds"] for r in results if r["model"] == model]
    expected = max(same) if same else 1.5 * max((r["seconds"] for r in results), default=0.0)
    return elapsed + expected > budget


def one_row(folder: Path, runner: str, mode: str, values: dict, args, tmp: Path, smoke: bool) -> dict:
    watcher = None if smoke else GPUPeak()
    if watcher:
        watcher.start()
    try:
        if runner == "workbench":
            got = workbench_row(Path(os.environ["WORKBENCH_HOME"]), folder, mode,
                                {k: v for k, v in values.items() if k != "_extra"}, args.steps,
                                args.batch_size, args.max_length, values.get("_extra", []))
        else:
            got = plain_row(folder, mode, args.steps, args.batch_size, args.max_length, tmp, gpu=not smoke)
        got["error"] = ""
    except Exception as exc:  # noqa: BLE001 - a row that cannot run is reported and the others go on
        got = {"tokens_per_s": 0.0, "chosen": {}, "loss": None, "s_per_step": float("nan"), "error": str(exc)}
    peak = watcher.stop() if watcher else None
    got["peak_gib"] = None if peak is None else peak / 2**30
    return got


def line(r: dict) -> str:
    if r["error"]:
        return f"| {r['model']} | {r['row']} | failed: {r['error'][:160]} | | | | |"
    m = f"{r['mfu'] * 100:.1f} %" if r["mfu"] is not None else "n/a"
    chosen = " ".join(f"{k}={v}" for k, v in r["chosen"].items())
    memory = "-" if r["peak_gib"] is None else f"{r['peak_gib']:.2f} GiB"
    return f"| {r['model']} | {r['row']} | {r['tokens_per_s']:.0f} | {r['s_per_step']:.3f} | {memory} | {m} | {chosen} |"


def summary(results: list[dict]) -> None:
    def rate(model, row):
        return next((r["tokens_per_s"] for r in results if r["model"] == model and r["row"] == row
                     and not r["error"]), 0.0)

    def peak(model, row):
        return next((r["peak_gib"] for r in results if r["model"] == model and r["row"] == row and not r["error"]), 0)

    for model in dict.fromkeys(r["model"] for r in results):
        wb, plain = rate(model, "wb lora (defaults)"), rate(model, "plain TRL lora (defaults)")
        if wb and plain:
            print(f"{model}: workbench LoRA / plain TRL LoRA tokens/s = {wb / plain:.2f}x (goal >= 1.8x)")
        q, b = peak(model, "wb qlora (defaults)"), peak(model, "wb lora all off")
        if q and b:
            print(f"{model}: QLoRA peak / bf16 LoRA (fast path off) peak = {q / b:.2f} (goal <= 0.45)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="0.5b,1.5b")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--peak-tflops", type=float, help="the GPU's peak dense bf16 TFLOP/s, when not in the table")
    parser.add_argument("--only", type=lambda s: set(s.split(",")), help="rows to run, by name")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON (after every row)")
    parser.add_argument("--budget", type=float, help="seconds: rows that would not fit are skipped, in tier order")
    parser.add_argument("--smoke", action="store_true", help="CPU: the tiny model, two short rows")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.smoke:
        args.steps, args.batch_size, args.max_length = 3, 2, 128
        tiers = [[("wb lora packing=on", "workbench", "lora", {"packing": "on"}),
                  ("plain TRL lora", "plain", "lora", {})]]
        models = ["tiny"]
    else:
        import torch

        if not torch.cuda.is_available():
            print("bench/gpu.py needs a CUDA GPU and torch sees none here; `bench/gpu.py --smoke` runs its CPU check.",
                  file=sys.stderr)
            return 2
        tiers = [list(tier) for tier in TIERS]
        count = torch.cuda.device_count()
        if count > 1:
            tiers[1].append((f"wb lora {count} GPUs", "workbench", "lora", {"_extra": ["--processes", str(count)]}))
        models = args.models.split(",")
        print(f"GPU: {gpu_name()} x {count}, torch {torch.__version__}, peak bf16 "
              f"{peak_of(gpu_name(), args.peak_tflops) or 'unknown (pass --peak-tflops)'} TFLOP/s")
    print(f"SFT on the demo's citations, batch {args.batch_size}, max_length {args.max_length}, {args.steps} steps, "
          f"median of the steps after {WARMUP}")
    print("| model | run | tokens/s | s/step | peak GPU memory | MFU | fast path |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["WORKBENCH_HOME"] = str(Path(tmp) / "home")
        (Path(tmp) / "home").mkdir()
        results = run_rows(tiers, models, args, Path(tmp), args.smoke)
        shutil.rmtree(Path(tmp) / "models", ignore_errors=True)
    summary(results)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    failed = [r for r in results if r["error"]]
    return 1 if args.smoke and failed else 0


if __name__ == "__main__":
    sys.exit(main())
