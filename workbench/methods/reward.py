"""A reward model with TRL's RewardTrainer (mode: LoRA, QLoRA, full, or the score head alone).

The base model gets a one-output score head (AutoModelForSequenceClassification, num_labels=1)
and learns r(prompt, answer) with the pairwise loss -log sigmoid(r_chosen - r_rejected).
The eval reports `accuracy`: the share of held-out pairs whose chosen answer scores higher.

The recipe: params -> tokenizer -> pairs -> model -> trainer -> train -> save.
"""

from __future__ import annotations

from workbench import models
from workbench import params as params_mod
from workbench.methods.kit.callback import EventCallback
from workbench.methods.kit.pair_data import pair_datasets
from workbench.methods.kit.train_args import check_mode, finish, load_model, peft_config, prepare_base, trainer_args
from workbench.methods.pair_params import RewardParams
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec


def run(spec: JobSpec, job: JobContext):
    from trl import RewardConfig, RewardTrainer

    # 1. Parameters, checked against their bounds.
    p: RewardParams = params_mod.build(RewardParams, spec.params)
    runtime = spec.runtime
    check_mode(p, runtime)

    # 2. Tokenizer.
    folder, tokenizer = prepare_base(spec, job)

    # 3. Pairs: ranked records give every pair their order implies; eval prompts are held out.
    job.status("Preparing the data")
    train_ds, eval_ds = pair_datasets(spec.train, spec.eval, p.eval_fraction, runtime.seed)
    job.data_counts = (len(train_ds), len(eval_ds) if eval_ds is not None else 0)
    job.check_stop()

    # 4. Model: the base with a fresh one-output score head, read at the last token that is not padding.
    job.status(f"Loading {models.describe(spec.base_model)}")
    model = load_model(p, folder, runtime, task="seq_cls", num_labels=1, pad_token_id=tokenizer.pad_token_id)
    job.check_stop()

    # 5. Trainer. With (Q)LoRA the score head is trained whole and saved with the adapter.
    config = RewardConfig(
        **trainer_args(p, job, runtime, has_eval=eval_ds is not None),
        center_rewards_coefficient=p.center_rewards or None,
    )
    trainer = RewardTrainer(
        model=model,
        args=config,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=peft_config(p, "SEQ_CLS", ["score"]),
        callbacks=[EventCallback(job)],
    )
    job.check_stop()

    # 6. Train, final eval (pair accuracy) and save: the adapter and score head for LoRA, else the model.
    return finish(trainer, job, p, tokenizer, has_eval=eval_ds is not None)
