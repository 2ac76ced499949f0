"""A classification head on a base model, with transformers' Trainer.

The base gets a fresh head with one output per class (AutoModelForSequenceClassification);
by default only that head trains (`mode=last_layer`), so a small labelled set is enough and the
base's knowledge stays as it was. Data: `labelled` records ({"text", "label"}), or
`unpaired_label` records, whose prompt + completion is classed good or bad. The class names
are saved in the model config (id2label / label2id) and in `labels.json` beside the output.
The eval reports `accuracy`.

The recipe: params and tokenizer -> texts and classes -> model -> trainer -> train -> save.
"""

from __future__ import annotations

import json

from workbench.data.errors import DataError
from workbench.data.prep import split_sources
from workbench.methods.classifier_params import ClassifierParams
from workbench.methods.kit.recipe import (
    build_trainer,
    count_data,
    load,
    start,
    train_to_end,
)
from workbench.methods.kit.train_args import hf_trainer_args, peft_config
from workbench.run.context import JobContext
from workbench.run.spec import DataSource, JobSpec


def label_name(record: dict) -> str:
    """The class of a record: its label as text; good or bad for unpaired_label records."""
    if record.get("label") is None or not ("text" in record or "completion" in record):
        raise DataError("The classifier needs labelled records (text, label) or unpaired_label records "
                        f"(prompt, completion, label); found a record with fields {', '.join(sorted(record))}.")
    label = record["label"]
    if isinstance(label, bool):
        return "good" if label else "bad"
    return str(label)


def class_names(records: list[dict]) -> list[str]:
    """The distinct classes, in a stable order: numbers by value, then names alphabetically."""
    names = {label_name(r) for r in records}
    if len(names) < 2:
        raise DataError(f"The classifier needs at least two classes; the data has {len(names)}: "
                        f"{', '.join(sorted(names)) or 'none'}.")
    return sorted(names, key=lambda n: (0, int(n), "") if n.lstrip("-").isdigit() else (1, 0, n))


def record_text(record: dict, tokenizer) -> str:
    """The text the head reads: the text itself, or the prompt followed by its completion."""
    if "text" in record:
        return record["text"]
    prompt, completion = record["prompt"], record["completion"]
    if isinstance(prompt, list) or isinstance(completion, list):
        if not getattr(tokenizer, "chat_template", None):
            raise DataError("The records are conversations, but the base model's tokenizer has no chat template "
                            "to render them with. Use an instruction-tuned base model or plain-text records.")
        as_messages = (lambda v, role: v if isinstance(v, list) else [{"role": role, "content": v}])
        return tokenizer.apply_chat_template(as_messages(prompt, "user") + as_messages(completion, "assistant"),
                                             tokenize=False)
    return f"{prompt}\n{completion}"


def class_datasets(train: list[DataSource], eval_sources: list[DataSource], eval_fraction: float, seed: int,
                   tokenizer, max_length: int):
    """(train, eval or None, class names): tokenised texts with their class ids."""
    from datasets import Dataset

    split = split_sources(train, eval_sources, eval_fraction, seed)
    names = class_names(split.every)
    ids = {name: i for i, name in enumerate(names)}

    def tokenised(records: list[dict]):
        encoded = tokenizer([record_text(r, tokenizer) for r in records], truncation=True, max_length=max_length)
        return Dataset.from_dict({**encoded, "labels": [ids[label_name(r)] for r in records]})

    return tokenised(split.train), (tokenised(split.eval) if split.eval else None), names


def accuracy(prediction) -> dict[str, float]:
    """The share of texts whose highest-scoring class is their label."""
    import numpy as np

    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    return {"accuracy": float((np.argmax(logits, axis=-1) == prediction.label_ids).mean())}


def run(spec: JobSpec, job: JobContext):
    from peft import get_peft_model
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    # 1. Parameters, checked against their bounds; the tokenizer.
    p, folder, tokenizer = start(spec, job, ClassifierParams)

    # 2. Texts and classes; an eval split is held out when none is given.
    job.status("Preparing the data")
    train_ds, eval_ds, names = class_datasets(spec.train, spec.eval, p.eval_fraction, spec.runtime.seed, tokenizer,
                                              p.max_length)
    count_data(job, train_ds, eval_ds)
    job.status(f"{len(names)} classes: {', '.join(names)}")
    job.check_stop()

    # 3. Model: the base with a fresh head of one output per class, read at the last real token.
    model = load(spec, job, p, folder, task="seq_cls", num_labels=len(names), id2label=dict(enumerate(names)),
                 label2id={n: i for i, n in enumerate(names)}, pad_token_id=tokenizer.pad_token_id)
    adapter = peft_config(p, "SEQ_CLS")
    if adapter is not None:
        model = get_peft_model(model, adapter)  # the head is trained whole and saved with the adapter
    job.check_stop()

    # 4. Trainer.
    config = TrainingArguments(**hf_trainer_args(p, job, spec.runtime, has_eval=eval_ds is not None))
    trainer = build_trainer(Trainer, job, model, config, tokenizer, train_ds, eval_ds,
                            data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=accuracy)

    # 5. Memory probe on the longest batch, train, final eval (accuracy) and save, with the class
    #    names beside the weights.
    out = train_to_end(trainer, job, p, tokenizer, probe=True)
    if out is not None:
        (out / "labels.json").write_text(json.dumps({"labels": names}, indent=1) + "\n", encoding="utf-8")
    return out
