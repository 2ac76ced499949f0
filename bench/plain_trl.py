"""Plain TRL: SFT with LoRA on chat records, the way TRL's documentation writes it. The reference
that `bench/overhead.py` runs beside the workbench, with the same model, data, LoRA, batch, length
and schedule. It imports nothing of the workbench.

    python bench/plain_trl.py MODEL_DIR DATA.jsonl OUT.json [--steps 12] [--batch-size 4]
        [--max-length 256] [--lr 5e-4] [--warmup 0.1] [--threads 2] [--packing] [--gradient-checkpointing]
        [--mode lora|qlora|full] [--gpu]

OUT.json gets: the wall time at start, after the imports, after the model load, and at each
logged step (time, loss, tokens seen), and the peak RSS the process saw (ru_maxrss).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

START = time.time()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--warmup", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--packing", action="store_true")
    parser.add_argument("--mode", choices=("lora", "qlora", "full"), default="lora")
    parser.add_argument("--gpu", action="store_true", help="on CUDA with TRL's own precision default (bf16)")
    parser.add_argument("--gradient-checkpointing", action="store_true",
                        help="TRL's default; off by default here, as in the workbench, so both run the same computation")
    args = parser.parse_args()

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    if args.threads:
        torch.set_num_threads(args.threads)
    imported = time.time()
    records = [json.loads(line) for line in open(args.data) if line.strip()]
    rows = [{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in records]
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    if args.mode == "qlora":  # TRL's QLoRA recipe: a 4-bit NF4 base, bf16 compute
        from transformers import BitsAndBytesConfig

        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=torch.bfloat16)
        model = AutoModelForCausalLM.from_pretrained(args.model, quantization_config=quant, dtype=torch.bfloat16)
    else:
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16 if args.gpu else torch.float32)
    loaded = time.time()
    steps: list[dict] = []

    class Times(TrainerCallback):
        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                steps.append({"time": time.time(), "step": state.global_step, "loss": logs["loss"],
                              "tokens": state.num_input_tokens_seen})

    config = SFTConfig(
        output_dir=args.out + ".trainer", max_steps=args.steps, per_device_train_batch_size=args.batch_size,
        max_length=args.max_length, learning_rate=args.lr, warmup_steps=args.warmup, lr_scheduler_type="cosine",
        logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
        **({} if args.gpu else {"use_cpu": True, "bf16": False}),
        seed=42, packing=args.packing, include_num_input_tokens_seen="non_padding",
        gradient_checkpointing=args.gradient_checkpointing,
    )
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                         peft_config=None if args.mode == "full" else lora, callbacks=[Times()])
    trainer.train()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with open(args.out, "w") as f:
        json.dump({"start": START, "imported": imported, "loaded": loaded, "steps": steps, "peak_rss": peak}, f)


if __name__ == "__main__":
    sys.exit(main())
