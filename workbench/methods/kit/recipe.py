"""The steps every training recipe takes around its own: the params and the base model at the
start, the model loaded for its mode, the trainer built to report events, and the run taken to
its end (resumed, evaluated, saved).

A recipe reads: params and base (`start`) -> its data (`count_data` for the events) -> model
(`load`) -> its TRL config -> trainer (`build_trainer`) -> `train_to_end`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from workbench import models
from workbench import params as params_mod
from workbench.methods.kit import memory_probe, oom, sharding
from workbench.methods.kit.checkpoints import safe, save_final
from workbench.methods.kit.callback import EventCallback
from workbench.methods.kit.stop_sync import StopSync
from workbench.methods.kit.train_args import (
    ADAPTER_MODES,
    check_mode,
    load_model,
    prepare_base,
)
from workbench.run import layout
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec

P = TypeVar("P")


def start(spec: JobSpec, job: JobContext, params_cls: type[P],
          *checks: Callable[[P], None]) -> tuple[P, Path, Any]:
    """(params, model folder, tokenizer): the params built from the spec and checked against their
    bounds, then by each of `checks`, then against this machine (`check_mode`: qlora needs CUDA),
    all before anything is loaded; then the base resolved and its tokenizer (`prepare_base`)."""
    p = params_mod.build(params_cls, spec.params)
    for check in checks:
        check(p)
    check_mode(p, spec.runtime)
    folder, tokenizer = prepare_base(spec, job)
    sharding.resolve(spec, job, p, folder)  # several processes: DDP or FSDP, and why, in job.toml
    return p, folder, tokenizer


def count_data(job: JobContext, train_ds, eval_ds=None) -> None:
    """Record the number of train and eval rows (eval_ds None: none) for the train_begin event."""
    job.data_counts = (len(train_ds), len(eval_ds) if eval_ds is not None else 0)


def load(spec: JobSpec, job: JobContext, p: Any, folder: Path, **kw):
    """The model to train, loaded for its mode (`load_model`; `kw` as there), with a status event.

    The seed is set first: a head the base lacks (a reward model's score, a classifier's) starts
    from the same weights in every run of the same spec."""
    from transformers import set_seed

    job.status(f"Loading {models.describe(spec.base_model)}")
    set_seed(spec.runtime.seed)
    return load_model(p, folder, spec.runtime, **kw)


def build_trainer(trainer_cls: type, job: JobContext, model, config, tokenizer, train_ds, eval_ds=None, **kw):
    """`trainer_cls` (a transformers Trainer or a TRL one) on the recipe's model, config and data,
    reporting to the job's events, its checkpoints staged and checked for space (`checkpoints.safe`);
    `kw` adds what only that trainer takes (peft_config...)."""
    with sharding.cpu_ranks(config):  # FSDP on CPU ranks too (accelerate turns it on for GPUs alone)
        trainer = safe(trainer_cls)(
            model=model,
            args=config,
            train_dataset=train_ds,
            eval_dataset=eval_ds,
            processing_class=tokenizer,
            callbacks=[EventCallback(job), StopSync(job)],
            **kw,
        )
    trainer.job = job
    return trainer


def train_to_end(trainer, job: JobContext, p: Any, tokenizer, probe: bool = False) -> Path | None:
    """Take a built trainer to the end; the output folder, or None when the run was stopped.

    With `probe`, the memory probe first runs on the longest batch (unless gradient checkpointing
    is on: the probe runs without it, so it would overstate the need), so an out-of-memory shows
    in the first minute. Then: train (from the last checkpoint when resuming), a final eval when
    the trainer has an eval set and its last step was not evaluated, and the save: the adapter
    alone for LoRA and QLoRA (with any head it trains), the whole model otherwise."""
    job.check_stop()
    with oom.watch(trainer, job, p):  # an out-of-memory names its step and batch shape (`kit.oom`)
        if probe and sharding.sharded(job.spec.runtime):
            job.status("no memory probe: under FSDP the model is sharded when training starts")
        elif probe and not p.gradient_checkpointing:
            memory_probe.probe(trainer, p.batch_size, job)
        job.check_stop()
        job.status("Training")
        trainer.train(resume_from_checkpoint=job.resume_checkpoint)
        if job.stop_requested:
            return None
        if trainer.eval_dataset is not None and job.last_eval_step != job.last_step:
            trainer.evaluate()
    out = layout.output_for(job.run_dir, adapter=p.mode in ADAPTER_MODES)
    job.status(f"Saving {out.name}")
    save_final(trainer, tokenizer, out)
    return out
