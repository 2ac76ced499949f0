"""ORPO with TRL's ORPOTrainer (trl.experimental in TRL 1.x): preference optimisation without a reference
model, one stage from the base (mode: LoRA, QLoRA, full or the output head).

The loss is the chosen answers' own language-model loss (as in SFT) plus beta times an odds-ratio
term that raises the odds of the chosen answer over the rejected one; no frozen copy of the
model is kept, so it needs no SFT stage first and less memory than DPO. Logged per step: loss,
nll_loss, log_odds_ratio, rewards/accuracies and rewards/margins (forwarded as metrics).

The recipe: params and tokenizer -> pairs -> model -> trainer -> train -> save.
"""

from __future__ import annotations

from workbench.methods.kit import pair_data
from workbench.methods.kit.recipe import build_trainer, load, start, train_to_end
from workbench.methods.kit.train_args import peft_config, trainer_args
from workbench.methods.orpo_params import ORPOParams
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec


def run(spec: JobSpec, job: JobContext):
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    # 1. Parameters, checked against their bounds; the tokenizer.
    p, folder, tokenizer = start(spec, job, ORPOParams)

    # 2. Pairs: ranked records give every pair their order implies (not those preferring a cut answer,
    #    unless cut_answers=keep); eval prompts are held out.
    train_ds, eval_ds = pair_data.prepare(spec, job, p.eval_fraction, drop_cut=p.cut_answers == "drop")
    job.check_stop()

    # 3. Model: the policy alone, ORPO has no reference.
    model = load(spec, job, p, folder)
    job.check_stop()

    # 4. Trainer.
    config = ORPOConfig(**trainer_args(p, job, spec.runtime, has_eval=eval_ds is not None), beta=p.beta)
    trainer = build_trainer(ORPOTrainer, job, model, config, tokenizer, train_ds, eval_ds,
                            peft_config=peft_config(p))

    # 5. Train, final eval and save: the adapter alone for LoRA, the whole model otherwise.
    return train_to_end(trainer, job, p, tokenizer)
