"""Supervised fine-tuning with TRL's SFTTrainer: LoRA (DoRA, rsLoRA), QLoRA, full, or the
output head alone (`mode`).

The recipe: params -> tokenizer -> data and preflight -> model -> trainer -> memory probe
-> train -> save.
"""

from __future__ import annotations

from workbench import models
from workbench import params as params_mod
from workbench.data import render
from workbench.data.prep import sft_datasets
from workbench.methods.kit import memory_probe
from workbench.methods.kit.callback import EventCallback
from workbench.methods.kit.sft_preflight import check_rows, check_tokenized
from workbench.methods.kit.train_args import check_mode, finish, load_model, peft_config, prepare_base, trainer_args
from workbench.methods.sft_params import SFTParams
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec


def run(spec: JobSpec, job: JobContext):
    from trl import SFTConfig, SFTTrainer

    # 1. Parameters, checked against their bounds and against this machine (qlora needs CUDA).
    p: SFTParams = params_mod.build(SFTParams, spec.params)
    runtime = spec.runtime
    check_mode(p, runtime)

    # 2. Tokenizer (the embedded default is converted once, with progress events).
    folder, tokenizer = prepare_base(spec, job)

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

    # 4. Model, loaded for its mode (4-bit for qlora; all but the output head frozen for last_layer).
    job.status(f"Loading {models.describe(spec.base_model)}")
    model = load_model(p, folder, runtime)
    job.check_stop()

    # 5. Trainer.
    config = SFTConfig(
        **trainer_args(p, job, runtime, has_eval=eval_ds is not None),
        completion_only_loss=True,
        include_num_input_tokens_seen="non_padding",
    )
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=peft_config(p),
        callbacks=[EventCallback(job)],
    )
    job.check_stop()

    # 6. Memory probe: an out-of-memory shows in the first minute, not when the longest batch comes up.
    if not p.gradient_checkpointing:  # the probe runs without it, so it would overstate the need
        memory_probe.probe(trainer, p.batch_size, job)
    job.check_stop()

    # 7. Train (from the last checkpoint when resuming), then a final eval and save:
    #    the adapter alone for LoRA and QLoRA, the whole model otherwise.
    return finish(trainer, job, p, tokenizer, has_eval=eval_ds is not None)
