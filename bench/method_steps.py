"""Seconds per step of every training method, side by side in one invocation.

Each method trains a few steps on the same machine, one after another, on data built from
the demo project (citations -> JSON): chat records for SFT and distillation, preference
pairs (the right JSON over a broken one) for the reward model and DPO, prompts with their
answer for GRPO/RLOO/PPO, labelled texts for the classifier. Read the ratios; this machine is
noisy.

    .venv/bin/python bench/method_steps.py [--model default] [--steps 6] [--only sft-lora,dpo]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from workbench.registry.specs import make_spec

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "projects" / "demo" / "datasets" / "citations-train.jsonl"

SHORT = {"batch_size": "4", "max_length": "256", "eval_steps": "0", "save_steps": "1000"}
REWARD_FILE = '''
def json_reward(prompts, completions, **kw):
    import json
    out = []
    for c in completions:
        text = c if isinstance(c, str) else c[-1]["content"]
        try:
            json.loads(text)
            out.append(1.0)
        except ValueError:
            out.append(0.0)
    return out
'''

# (label, method, dataset, values); "{reward_run}" and "{reward_file}" are filled in at run time.
CASES = [
    ("sft-lora", "sft", "chat", {}),
    ("sft-dora", "sft", "chat", {"use_dora": "true"}),
    ("sft-full", "sft", "chat", {"mode": "full"}),
    ("sft-last_layer", "sft", "chat", {"mode": "last_layer"}),
    ("classifier", "classifier", "labelled", {}),
    ("reward", "reward", "pairs", {}),
    ("dpo", "dpo", "pairs", {}),
    ("distill", "distill", "chat", {"teacher": "base"}),
    ("gkd", "gkd", "chat", {"teacher": "base", "max_new_tokens": "32"}),
    ("grpo", "grpo", "prompts", {"rewards": "json_reward", "reward_file": "{reward_file}",
                                 "num_generations": "4", "max_completion_length": "32"}),
    ("rloo", "rloo", "prompts", {"reward_model": "{reward_run}", "num_generations": "4",
                                 "max_completion_length": "32"}),
    ("ppo", "ppo", "prompts", {"reward_model": "{reward_run}", "max_new_tokens": "32", "mini_batch_size": "2"}),
]


def write_data(folder: Path) -> dict[str, Path]:
    records = [json.loads(line) for line in DEMO.read_text().splitlines()[:64]]
    files = {"chat": folder / "chat.jsonl", "pairs": folder / "pairs.jsonl", "prompts": folder / "prompts.jsonl",
             "labelled": folder / "labelled.jsonl"}
    files["chat"].write_text("".join(json.dumps(r) + "\n" for r in records))
    pairs, prompts, labelled = [], [], []
    for i, r in enumerate(records):
        prompt, answer = r["messages"][:-1], r["messages"][-1]["content"]
        pairs.append({"prompt": prompt, "chosen": [{"role": "assistant", "content": answer}],
                      "rejected": [{"role": "assistant", "content": answer[: len(answer) // 2]}]})
        prompts.append({"prompt": prompt, "answer": answer})
        labelled.append({"text": r["messages"][-2]["content"], "label": "old" if '"year": 19' in answer else "new"})
    for key, rows in (("pairs", pairs), ("prompts", prompts), ("labelled", labelled)):
        files[key].write_text("".join(json.dumps(r) + "\n" for r in rows))
    return files


def run_case(project: str, method: str, dataset: str, values: dict[str, str], steps: int, threads: int) -> dict:
    from workbench import registry
    from workbench.jobs import launch, store
    from workbench.params import describe
    from workbench.run import events as ev
    from workbench.run.spec import Runtime

    known = {info.name for info in describe(registry.get(method).params)}
    shared = {k: v for k, v in SHORT.items() if k in known}  # each method takes the settings it has
    spec = make_spec(project, method, {**shared, **values, "max_steps": str(steps)}, datasets=[dataset],
                            runtime=Runtime(threads=threads))
    started = time.time()
    run_dir = launch.start(spec)
    info = store.wait(project, spec.id, poll=0.5)
    logs = [e for e in ev.read_all(run_dir / "events.jsonl") if isinstance(e, ev.Log)]
    gaps = [b.time - a.time for a, b in zip(logs, logs[1:])][1:]  # the first step warms up
    return {"run": spec.id, "state": info.state, "message": info.message, "wall_s": time.time() - started,
            "s_per_step": statistics.median(gaps) if gaps else float("nan"), "steps": len(logs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=0, help="worker threads (0 = the launcher's choice)")
    parser.add_argument("--only", default="", help="comma-separated labels of the cases to run")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    chosen = [c for c in CASES if not args.only or c[0] in args.only.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["WORKBENCH_HOME"] = str(Path(tmp) / "projects")
        from workbench import project as projects
        from workbench.data.importer import import_file

        projects.create("bench", base_model=args.model)
        for name, path in write_data(Path(tmp)).items():
            import_file("bench", path, name=name)
        reward_file = Path(tmp) / "rewards.py"
        reward_file.write_text(REWARD_FILE)
        reward_run = ""
        results = []
        for label, method, dataset, values in chosen:
            if "{reward_run}" in values.values() and not reward_run:
                reward_run = run_case("bench", "reward", "pairs", {}, 2, args.threads)["run"]
            filled = {k: v.replace("{reward_run}", reward_run).replace("{reward_file}", str(reward_file))
                      for k, v in values.items()}
            try:
                result = run_case("bench", method, dataset, filled, args.steps, args.threads)
            except Exception as exc:  # noqa: BLE001 - one failing method should not hide the others
                result = {"state": "refused", "message": str(exc), "s_per_step": float("nan"), "steps": 0,
                          "wall_s": 0.0}
            results.append((label, result))
            print(f"{label:16} {result['s_per_step']:8.2f} s/step  {result['state']:9} "
                  f"({result['steps']} steps logged, {result['wall_s']:.0f} s wall) {result.get('message') or ''}",
                  flush=True)
    print(f"model={args.model}, batch 4, max_length 256, {args.steps} steps each, cpu_count={os.cpu_count()}")


if __name__ == "__main__":
    main()
