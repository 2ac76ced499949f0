"""Direct preference optimisation with TRL's DPOTrainer (mode: LoRA, QLoRA, full or the output head).

The model learns to raise the likelihood of chosen answers over rejected ones relative to a
frozen reference: the base model. With LoRA the reference is the base with the adapter
switched off (no second copy in memory); with full training TRL keeps a frozen copy.
Logged per step: loss, rewards/margins, rewards/accuracies (forwarded as metrics). At step 1 and
every `sample_every` steps, `sample_count` training pairs become sample events with the policy's
log-ratio to the reference for each answer (`methods.kit.samples.PairSamples`: one no-grad forward).

The recipe: params and tokenizer -> pairs -> model -> trainer -> train -> save.
"""

from __future__ import annotations

from workbench.methods.kit import pair_data
from workbench.methods.kit.recipe import build_trainer, load, start, train_to_end
from workbench.methods.kit.samples import PairSamples
from workbench.methods.kit.train_args import peft_config, reference_kwargs, trainer_args
from workbench.methods.pair_params import DPOParams
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec


def run(spec: JobSpec, job: JobContext):
    from trl import DPOConfig, DPOTrainer

    # 1. Parameters, checked against their bounds; the tokenizer.
    p, folder, tokenizer = start(spec, job, DPOParams)

    # 2. Pairs: ranked records give every pair their order implies (not those preferring a cut answer,
    #    unless cut_answers=keep); eval prompts are held out.
    train_ds, eval_ds = pair_data.prepare(spec, job, p.eval_fraction, drop_cut=p.cut_answers == "drop")
    job.check_stop()

    # 3. Model (the reference is made by the trainer: ref_model=None).
    model = load(spec, job, p, folder)
    job.check_stop()

    # 4. Trainer.
    config = DPOConfig(
        **trainer_args(p, job, spec.runtime, has_eval=eval_ds is not None),
        **reference_kwargs(p, spec.runtime),  # a full run's reference in 16 bits
        beta=p.beta,
        loss_type=[p.loss_type],
        label_smoothing=p.label_smoothing,
    )
    trainer = build_trainer(DPOTrainer, job, model, config, tokenizer, train_ds, eval_ds,
                            ref_model=None, peft_config=peft_config(p))
    trainer.add_callback(PairSamples(job, trainer, p.sample_every, p.sample_count))

    # 5. Train, final eval and save: the adapter alone for LoRA, the whole model otherwise.
    return train_to_end(trainer, job, p, tokenizer)
