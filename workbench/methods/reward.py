"""A reward model with TRL's RewardTrainer (mode: LoRA, QLoRA, full, or the score head alone).

The base model gets a one-output score head (AutoModelForSequenceClassification, num_labels=1)
and learns r(prompt, answer) with the pairwise loss -log sigmoid(r_chosen - r_rejected).
The eval reports `accuracy`: the share of held-out pairs whose chosen answer scores higher.

The recipe: params and tokenizer -> pairs -> model -> trainer -> train -> save.
"""

from __future__ import annotations

from workbench.methods.kit import pair_data
from workbench.methods.kit.recipe import build_trainer, load, start, train_to_end
from workbench.methods.kit.train_args import peft_config, trainer_args
from workbench.methods.pair_params import RewardParams
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec


def run(spec: JobSpec, job: JobContext):
    from trl import RewardConfig, RewardTrainer

    # 1. Parameters, checked against their bounds; the tokenizer.
    p, folder, tokenizer = start(spec, job, RewardParams)

    # 2. Pairs: ranked records give every pair their order implies; eval prompts are held out.
    train_ds, eval_ds = pair_data.prepare(spec, job, p.eval_fraction)
    job.check_stop()

    # 3. Model: the base with a fresh one-output score head, read at the last token that is not padding.
    model = load(spec, job, p, folder, task="seq_cls", num_labels=1, pad_token_id=tokenizer.pad_token_id)
    job.check_stop()

    # 4. Trainer. With (Q)LoRA the score head is trained whole and saved with the adapter.
    config = RewardConfig(
        **trainer_args(p, job, spec.runtime, has_eval=eval_ds is not None),
        center_rewards_coefficient=p.center_rewards or None,
    )
    trainer = build_trainer(RewardTrainer, job, model, config, tokenizer, train_ds, eval_ds,
                            peft_config=peft_config(p, "SEQ_CLS", ["score"]))

    # 5. Train, final eval (pair accuracy) and save: the adapter and score head for LoRA, else the model.
    return train_to_end(trainer, job, p, tokenizer)
