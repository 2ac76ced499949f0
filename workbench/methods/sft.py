"""Supervised fine-tuning, full or LoRA, with TRL's SFTTrainer.

The recipe: params -> tokenizer -> data and preflight -> model -> trainer -> memory probe
-> train -> save.
"""

from __future__ import annotations

from workbench import models
from workbench.data import render
from workbench.jobs.context import JobContext
from workbench.jobs.spec import JobSpec
from workbench.methods import memory_probe
from workbench.methods import params as params_mod
from workbench.methods.data_prep import sft_datasets
from workbench.methods.sft_preflight import check_rows, check_tokenized
from workbench.methods.sft_params import SFTParams


def lora_config(p: SFTParams):
    from peft import LoraConfig

    targets = p.target_modules.strip()
    return LoraConfig(
        r=p.lora_r, lora_alpha=p.lora_alpha, lora_dropout=p.lora_dropout, task_type="CAUSAL_LM",
        target_modules=targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()],
    )


def run(spec: JobSpec, job: JobContext):
    from trl import SFTConfig, SFTTrainer

    # 1. Parameters, checked against their bounds.
    p: SFTParams = params_mod.build(SFTParams, spec.params)
    runtime = spec.runtime

    # 2. Tokenizer (the embedded default is converted once, with progress events).
    job.status("Preparing the base model")
    folder = models.resolve(spec.base_model, status=job.status)
    spec.model_path = str(folder)
    job.check_stop()
    tokenizer = models.load_tokenizer(folder)

    # 3. Data: chat records learn their last answer; an eval split is held out when none is given.
    #    Tokenised once, by TRL's own preparation; the trainer then only truncates it.
    job.status("Preparing the data")
    train_rows, eval_rows = sft_datasets(spec.train, spec.eval, p.eval_fraction, runtime.seed)
    job.data_counts = (len(train_rows), len(eval_rows) if eval_rows is not None else 0)
    check_rows(spec, tokenizer, train_rows)
    train_ds = render.tokenize(train_rows, tokenizer)
    eval_ds = render.tokenize(eval_rows, tokenizer) if eval_rows is not None else None
    check_tokenized(spec, job, p, folder, tokenizer, train_ds)
    job.check_stop()

    # 4. Model.
    job.status(f"Loading {models.describe(spec.base_model)}")
    dtype = {"bf16": "bfloat16", "fp16": "float16"}.get(runtime.precision, "float32")
    model = models.load_causal_lm(folder, dtype=dtype, device=runtime.device)
    job.check_stop()

    # 5. Trainer.
    on_cpu = runtime.device == "cpu"
    config = SFTConfig(
        output_dir=str(job.checkpoints_dir),
        learning_rate=p.learning_rate,
        num_train_epochs=p.epochs,
        max_steps=p.max_steps if p.max_steps > 0 else -1,
        per_device_train_batch_size=p.batch_size,
        per_device_eval_batch_size=p.batch_size,
        gradient_accumulation_steps=p.grad_accum,
        max_length=p.max_length,
        warmup_steps=p.warmup if p.warmup < 1 else int(p.warmup),
        lr_scheduler_type=p.scheduler,
        weight_decay=p.weight_decay,
        logging_steps=p.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=p.save_steps,
        eval_strategy="steps" if eval_ds is not None and p.eval_steps > 0 else "no",
        eval_steps=p.eval_steps or None,
        gradient_checkpointing=p.gradient_checkpointing,
        use_cpu=on_cpu,
        bf16=runtime.precision == "bf16",
        fp16=runtime.precision == "fp16",
        seed=runtime.seed,
        completion_only_loss=True,
        include_num_input_tokens_seen="non_padding",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataset_num_proc=None,
    )
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=lora_config(p) if p.mode == "lora" else None,
        callbacks=job.trainer_callbacks(),
    )
    job.check_stop()

    # 6. Memory probe: an out-of-memory shows in the first minute, not when the longest batch comes up.
    if not p.gradient_checkpointing:  # the probe runs without it, so it would overstate the need
        memory_probe.probe(trainer, p.batch_size, job)
    job.check_stop()

    # 7. Train (from the last checkpoint when resuming).
    job.status("Training")
    trainer.train(resume_from_checkpoint=job.resume_checkpoint)
    if job.stop_requested:
        return None

    # 8. Final eval and save: the adapter alone for LoRA, the whole model otherwise.
    if eval_ds is not None and job.last_eval_step != job.last_step:
        trainer.evaluate()
    out = job.run_dir / ("adapter" if p.mode == "lora" else "model")
    job.status(f"Saving {out.name}")
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    return out
