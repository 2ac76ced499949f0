"""Supervised fine-tuning with TRL's SFTTrainer: LoRA (DoRA, rsLoRA), QLoRA, full, or the
output head alone (`mode`).

The recipe: params and tokenizer -> data and preflight -> model -> trainer -> memory probe
-> train -> save.
"""

from __future__ import annotations

from workbench.data.render import stop_token_ids
from workbench.methods.kit import fast_path
from workbench.methods.kit.recipe import build_trainer, load, start, train_to_end
from workbench.methods.kit.samples import EvalAnswers
from workbench.methods.kit.sft_preflight import token_datasets
from workbench.methods.kit.train_args import peft_config, trainer_args
from workbench.methods.sft_params import SFTParams
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec


def run(spec: JobSpec, job: JobContext):
    from trl import SFTConfig, SFTTrainer

    # 1. Parameters, checked against their bounds and against this machine (qlora needs CUDA);
    #    then the tokenizer (the embedded default is converted once, with progress events).
    p, folder, tokenizer = start(spec, job, SFTParams)
    fast = fast_path.resolve(spec, p)  # packing, attention, Liger, compile: `auto` chosen for this machine

    # 2. Data: chat records learn their last answer; an eval split is held out when none is given.
    #    Tokenised once, checked (template, truncation, memory); the trainer then only truncates it.
    train_ds, eval_ds = token_datasets(spec, job, p, folder, tokenizer)
    job.check_stop()

    # 3. Model, loaded for its mode (4-bit for qlora; all but the output head frozen for last_layer).
    model = load(spec, job, p, folder, **fast.model_kwargs())
    job.check_stop()

    # 4. Trainer.
    config = SFTConfig(
        **trainer_args(p, job, spec.runtime, has_eval=eval_ds is not None),
        completion_only_loss=True,
        include_num_input_tokens_seen="non_padding",
        **fast.config_kwargs(),  # packing: padding-free, each record attending to itself, eval rows unpacked
    )
    trainer = build_trainer(SFTTrainer, job, model, config, tokenizer, train_ds, eval_ds, peft_config=peft_config(p))
    if p.sample_count and eval_ds is not None:  # greedy answers to a few held-out prompts at each eval
        trainer.add_callback(EvalAnswers(job, trainer, p.sample_count, p.sample_max_tokens,
                                         sorted(stop_token_ids(tokenizer, folder))))

    # 5. Memory probe (an out-of-memory shows in the first minute, not when the longest batch comes
    #    up), train (from the last checkpoint when resuming), final eval and save: the adapter alone
    #    for LoRA and QLoRA, the whole model otherwise.
    return train_to_end(trainer, job, p, tokenizer, probe=True)
