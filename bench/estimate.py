"""The memory estimate against the measured peak, method by method.

Each case is estimated (`workbench.registry.estimate`, this machine's device and precision) and then
run for a few steps by the real worker in the foreground (`workbench.registry.measure.peak`: the
kernel's high-water mark of the worker's resident memory). The data is made so that every batch is
the estimate's worst case: records whose answers outgrow max_length (so each is cut to it, keeping loss)
and prompts as long as the longest. Prints estimate / measured per case; the goal is 0.75..1.25.

    .venv/bin/python bench/estimate.py [--model default|tiny|<folder>] [--steps 3] [--only sft-lora,dpo]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from method_steps import DEMO, REWARD_FILE  # the same demo data and reward function

SHARED = {"batch_size": "4", "max_length": "256", "eval_steps": "0", "save_steps": "1000", "eval_fraction": "0"}

# (label, method, dataset, values); "{reward_run}" and "{reward_file}" are filled in at run time.
CASES = [
    ("sft-lora", "sft", "chat", {}),
    ("sft-full", "sft", "chat", {"mode": "full"}),
    ("sft-last_layer", "sft", "chat", {"mode": "last_layer"}),
    ("classifier", "classifier", "labelled", {}),
    ("reward", "reward", "pairs", {}),
    ("dpo-lora", "dpo", "long_pairs", {}),
    ("dpo-full", "dpo", "long_pairs", {"mode": "full"}),
    ("distill", "distill", "chat", {"teacher": "base"}),
    ("gkd", "gkd", "chat", {"teacher": "base", "max_new_tokens": "32"}),
    ("grpo", "grpo", "prompts", {"rewards": "json_reward", "reward_file": "{reward_file}", "num_generations": "4",
                                 "max_completion_length": "32"}),
    ("rloo", "rloo", "prompts", {"reward_model": "{reward_run}", "num_generations": "4",
                                 "max_completion_length": "32"}),
    ("ppo-lora", "ppo", "prompts", {"reward_model": "{reward_run}", "max_new_tokens": "32", "mini_batch_size": "2"}),
    ("ppo-full", "ppo", "prompts", {"mode": "full", "reward_model": "{reward_run}", "max_new_tokens": "32",
                                    "mini_batch_size": "2"}),
]


def write_data(folder: Path, repeat: int, tokenizer=None, fit: int = 256) -> dict[str, Path]:
    """The demo's citations. Long pairs say their answer `repeat` times, so each outgrows max_length with its
    answer (a pair cut before its answer carries no loss: the trainer drops it); chat records say theirs as many
    times as fit in `fit` tokens with `tokenizer` (SFT refuses data whose answers are cut before their end), so
    each batch is nearly full; every prompt is the longest citation said `repeat` times (whichever prompt a
    sampling method draws, it is the longest)."""
    records = [json.loads(line) for line in DEMO.read_text().splitlines()[:48]]
    files = {k: folder / f"{k}.jsonl" for k in ("chat", "pairs", "long_pairs", "prompts", "labelled")}
    rows: dict[str, list] = {"chat": [], "pairs": [], "long_pairs": [], "prompts": [], "labelled": []}
    for r in records:
        prompt, answer = r["messages"][:-1], r["messages"][-1]["content"]
        long_answer = "\n".join([answer] * repeat)
        rows["chat"].append({"messages": prompt + [{"role": "assistant", "content": fitted(prompt, answer, tokenizer,
                                                                                            fit)}]})
        rows["long_pairs"].append({"prompt": prompt, "chosen": [{"role": "assistant", "content": long_answer}],
                                   "rejected": [{"role": "assistant", "content": long_answer[::-1]}]})
        # The reward trainer drops a pair longer than max_length instead of cutting it: these fit.
        short = [r["messages"][0], {"role": "user", "content": r["messages"][-2]["content"][:200]}]
        rows["pairs"].append({"prompt": short, "chosen": [{"role": "assistant", "content": answer}],
                              "rejected": [{"role": "assistant", "content": answer[::-1]}]})
        rows["prompts"].append({"prompt": prompt, "answer": answer})
        rows["labelled"].append({"text": r["messages"][-2]["content"],
                                 "label": "old" if '"year": 19' in answer else "new"})
    # Every prompt is the longest (the longest citation said `repeat` times): whichever a step samples, its batch is
    # the estimate's worst case.
    longest = max(rows["prompts"], key=lambda r: len(r["prompt"][-1]["content"]))["prompt"]
    said = longest[:-1] + [{"role": "user", "content": " ".join([longest[-1]["content"]] * repeat)}]
    rows["prompts"] = [{**r, "prompt": said} for r in rows["prompts"]]
    for key, path in files.items():
        path.write_text("".join(json.dumps(r) + "\n" for r in rows[key]))
    return files


def fitted(prompt: list[dict], answer: str, tokenizer, fit: int) -> str:
    """`answer` said as many times as the chat record still fits in `fit` tokens (at least once)."""
    said = answer
    while tokenizer is not None:
        more = said + "\n" + answer
        ids = tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": more}], tokenize=True)
        if len(ids["input_ids"] if hasattr(ids, "keys") else ids) > fit:
            break
        said = more
    return said


def measure(project: str, method: str, dataset: str, values: dict[str, str], steps: int, threads: int) -> dict:
    from workbench import registry
    from workbench.params import describe
    from workbench.registry.estimate import estimate
    from workbench.registry.measure import peak
    from workbench.registry.specs import make_spec
    from workbench.run.spec import Runtime

    known = {info.name for info in describe(registry.get(method).params)}
    chosen = {**{k: v for k, v in SHARED.items() if k in known}, **values, "max_steps": str(steps)}
    report = estimate(project, method, chosen, device="cpu", datasets=[dataset])
    mode = next(m for m in report["modes"] if m["mode"] == report["chosen"])
    spec = make_spec(project, method, chosen, datasets=[dataset], runtime=Runtime(threads=threads, device="cpu"))
    got = peak(spec)
    return {"run": spec.id, "estimate": mode, "step": report["step"], "peak": got.peak_bytes, "state": got.state,
            "seconds": got.seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="default (embedded), tiny (the tests' model) or a folder")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=6, help="times each answer (and each prompt's citation) is said: records outgrow 256")
    parser.add_argument("--only", default="", help="comma-separated labels of the cases to run")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    chosen = [c for c in CASES if not args.only or c[0] in args.only.split(",")]
    mib = 1024 ** 2
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["WORKBENCH_HOME"] = str(Path(tmp) / "projects")
        from workbench import project as projects
        from workbench.data.importer import import_file

        model = args.model
        if model == "tiny":
            from workbench.testing import make_tiny_model, tiny_home

            model = str(make_tiny_model(tiny_home()))
        projects.create("bench", base_model=model)
        from workbench.registry.lengths import read_tokenizer

        tokenizer = read_tokenizer(model)[0]
        for name, path in write_data(Path(tmp), args.repeat, tokenizer).items():
            import_file("bench", path, name=name)
        reward_file = Path(tmp) / "rewards.py"
        reward_file.write_text(REWARD_FILE)
        reward_run = ""
        print(f"{'case':15}{'estimate':>10}{'measured':>10}{'ratio':>7}  parts of the estimate (MiB)", flush=True)
        for label, method, dataset, values in chosen:
            if "{reward_run}" in values.values() and not reward_run:
                reward_run = measure("bench", "reward", "pairs", {}, 1, args.threads)["run"]
            filled = {k: v.replace("{reward_run}", reward_run).replace("{reward_file}", str(reward_file))
                      for k, v in values.items()}
            try:
                r = measure("bench", method, dataset, filled, args.steps, args.threads)
            except Exception as exc:  # noqa: BLE001 - one failing case should not hide the others
                print(f"{label:15} failed: {exc}", flush=True)
                continue
            est = r["estimate"]
            parts = " ".join(f"{k[:4]} {est[k] / mib:.0f}" for k in ("weights", "gradients", "optimizer",
                             "activations", "reference", "generation", "runtime") if est[k])
            print(f"{label:15}{est['memory'] / mib:>9.0f}M{r['peak'] / mib:>9.0f}M{est['memory'] / r['peak']:>7.2f}  "
                  f"{parts}; {r['step']}; {r['state']}, {r['seconds']:.0f} s", flush=True)
    print(f"model={args.model}, cpu fp32, {args.threads} threads, {args.steps} steps, batch 4, max_length 256")


if __name__ == "__main__":
    main()
