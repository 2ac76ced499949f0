"""Direct preference optimisation with TRL's DPOTrainer (mode: LoRA, QLoRA, full or the output head).

The model learns to raise the likelihood of chosen answers over rejected ones relative to a
frozen reference: the base model. With LoRA the reference is the base with the adapter
switched off (no second copy in memory); with full training TRL keeps a frozen copy.
Logged per step: loss, rewards/margins, rewards/accuracies (forwarded as metrics).

The recipe: params -> tokenizer -> pairs -> model -> trainer -> train -> save.
"""

from __future__ import annotations

from workbench import models
from workbench import params as params_mod
from workbench.methods.kit.callback import EventCallback
from workbench.methods.kit.pair_data import pair_datasets
from workbench.methods.kit.train_args import check_mode, finish, load_model, peft_config, prepare_base, trainer_args
from workbench.methods.pair_params import DPOParams
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec


def run(spec: JobSpec, job: JobContext):
    from trl import DPOConfig, DPOTrainer

    # 1. Parameters, checked against their bounds.
    p: DPOParams = params_mod.build(DPOParams, spec.params)
    runtime = spec.runtime
    check_mode(p, runtime)

    # 2. Tokenizer.
    folder, tokenizer = prepare_base(spec, job)

    # 3. Pairs: ranked records give every pair their order implies; eval prompts are held out.
    job.status("Preparing the data")
    train_ds, eval_ds = pair_datasets(spec.train, spec.eval, p.eval_fraction, runtime.seed)
    job.data_counts = (len(train_ds), len(eval_ds) if eval_ds is not None else 0)
    job.check_stop()

    # 4. Model (the reference is made by the trainer: ref_model=None).
    job.status(f"Loading {models.describe(spec.base_model)}")
    model = load_model(p, folder, runtime)
    job.check_stop()

    # 5. Trainer.
    config = DPOConfig(
        **trainer_args(p, job, runtime, has_eval=eval_ds is not None),
        beta=p.beta,
        loss_type=[p.loss_type],
        label_smoothing=p.label_smoothing,
    )
    trainer = DPOTrainer(
        model=model,
        ref_model=None,
        args=config,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=peft_config(p),
        callbacks=[EventCallback(job)],
    )
    job.check_stop()

    # 6. Train, final eval and save: the adapter alone for LoRA, the whole model otherwise.
    return finish(trainer, job, p, tokenizer, has_eval=eval_ds is not None)
