"""What every trainer config of the workbench shares, built once from a method's params.

Each method passes these to its own TRL config (SFTConfig, RewardConfig, DPOConfig) and adds
what only it needs. On the CPU: use_cpu=True and no mixed precision."""

from __future__ import annotations

from typing import Any

from workbench import models
from workbench.jobs.context import JobContext
from workbench.jobs.spec import JobSpec, Runtime

DTYPES = {"bf16": "bfloat16", "fp16": "float16"}


def dtype_name(runtime: Runtime) -> str:
    """The torch dtype of the weights for the resolved precision (fp32 otherwise)."""
    return DTYPES.get(runtime.precision, "float32")


def prepare_base(spec: JobSpec, job: JobContext):
    """(model folder, tokenizer): the base resolved (the embedded default converted once, with
    progress events) and recorded in the spec."""
    job.status("Preparing the base model")
    folder = models.resolve(spec.base_model, status=job.status)
    spec.model_path = str(folder)
    job.check_stop()
    return folder, models.load_tokenizer(folder)


def trainer_args(p: Any, job: JobContext, runtime: Runtime, has_eval: bool) -> dict[str, Any]:
    return dict(
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
        eval_strategy="steps" if has_eval and p.eval_steps > 0 else "no",
        eval_steps=p.eval_steps or None,
        gradient_checkpointing=p.gradient_checkpointing,
        use_cpu=runtime.device == "cpu",
        bf16=runtime.precision == "bf16",
        fp16=runtime.precision == "fp16",
        seed=runtime.seed,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataset_num_proc=None,
    )


def lora_config(p: Any, task_type: str = "CAUSAL_LM", modules_to_save: list[str] | None = None):
    from peft import LoraConfig

    targets = p.target_modules.strip()
    return LoraConfig(
        r=p.lora_r, lora_alpha=p.lora_alpha, lora_dropout=p.lora_dropout, task_type=task_type,
        target_modules=targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()],
        modules_to_save=modules_to_save,
    )


def finish(trainer, job: JobContext, p: Any, tokenizer, has_eval: bool):
    """Train (from the last checkpoint when resuming), evaluate at the end, save; the output folder or None."""
    job.status("Training")
    trainer.train(resume_from_checkpoint=job.resume_checkpoint)
    if job.stop_requested:
        return None
    if has_eval and job.last_eval_step != job.last_step:
        trainer.evaluate()
    out = job.run_dir / ("adapter" if p.mode == "lora" else "model")
    job.status(f"Saving {out.name}")
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    return out
