"""Offline distillation: the student learns the teacher's whole next-token distribution on a dataset's answers.

loss = alpha * T^2 * D(teacher_T, student_T) + (1 - alpha) * CE(student, labels), both averaged over the
answer tokens (the SFT mask: prompt tokens carry no loss), where X_T is softmax(logits / T) and D is the
forward KL(teacher || student), the reverse KL(student || teacher) or the generalized Jensen-Shannon
divergence. T^2 keeps the teacher term's gradients the size they have at T = 1 (Hinton et al., 2015).
The trainer is TRL's SFTTrainer with its loss replaced, so checkpoints, resume, eval and the events are
those of SFT; `kl` and `ce` are logged with the loss (and `eval_kl`, `eval_ce` at each eval).

The recipe: params and tokenizer -> teacher check -> data and preflight -> models -> trainer
-> top-k cache -> train -> save.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from trl import SFTConfig, SFTTrainer

from workbench.data.render import stop_token_ids
from workbench.methods.distill_params import DistillParams
from workbench.methods.kit import teacher as teachers
from workbench.methods.kit.recipe import build_trainer, start, train_to_end
from workbench.methods.kit.samples import EvalAnswers
from workbench.methods.kit.sft_preflight import token_datasets
from workbench.methods.kit.train_args import peft_config, trainer_args
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec

# --- The loss ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LossParts:
    loss: torch.Tensor  # what is optimised
    kl: float  # mean divergence per answer token, at temperature T, before alpha and T^2
    ce: float  # mean cross-entropy per answer token, at temperature 1


def divergence(student_logp: torch.Tensor, teacher_logp: torch.Tensor, kind: str, beta: float = 0.5):
    """Per-position divergence between two log-distributions over the last axis."""
    if kind == "forward":
        return (teacher_logp.exp() * (teacher_logp - student_logp)).sum(-1)
    if kind == "reverse":
        return (student_logp.exp() * (student_logp - teacher_logp)).sum(-1)
    if kind == "jsd":
        mixture = torch.logsumexp(torch.stack([teacher_logp + math.log(beta), student_logp + math.log(1 - beta)]), 0)
        return (beta * (teacher_logp.exp() * (teacher_logp - mixture)).sum(-1)
                + (1 - beta) * (student_logp.exp() * (student_logp - mixture)).sum(-1))
    raise ValueError(f"unknown divergence '{kind}' (forward, reverse or jsd)")


def distill_loss(student_logits: torch.Tensor, labels: torch.Tensor, *, temperature: float, alpha: float,
                 teacher_logits: torch.Tensor | None = None, teacher_topk: tuple | None = None,
                 kl: str = "forward", jsd_beta: float = 0.5, width: int | None = None,
                 num_items: int | torch.Tensor | None = None) -> LossParts:
    """The distillation loss of one batch.

    `student_logits` and `teacher_logits` are [batch, length, vocab]; the logits at position i predict
    the label at i + 1, and labels of -100 (prompt, padding) carry no loss. `teacher_topk` replaces
    `teacher_logits` with (token ids, log-probs), each [answer tokens, k], in the order of the answer
    positions row by row: the teacher renormalised over its k tokens (forward KL only). `width` cuts the
    vocabulary to the tokenizer's tokens when a model pads its embedding rows. `num_items` is the
    divisor (answer tokens of the whole accumulated batch), else the tokens of this batch.
    """
    where = labels[:, 1:] != -100
    student = student_logits[:, :-1][where].float()
    if width is not None:
        student = student[:, :width]
    targets = labels[:, 1:][where]
    ce = F.cross_entropy(student, targets, reduction="none")
    student_logp = F.log_softmax(student / temperature, dim=-1)
    if teacher_topk is not None:
        if kl != "forward":
            raise ValueError("a top-k teacher defines only the forward KL")
        ids, logp = teacher_topk
        teacher_logp = F.log_softmax(logp.float() / temperature, dim=-1)  # renormalised over the k tokens
        div = divergence(student_logp.gather(-1, ids.long()), teacher_logp, "forward")
    else:
        teacher = teacher_logits[:, :-1][where].float()
        if width is not None:
            teacher = teacher[:, :width]
        div = divergence(student_logp, F.log_softmax(teacher / temperature, dim=-1), kl, jsd_beta)
    count = int(where.sum())
    divisor = torch.as_tensor(num_items if num_items is not None else count, device=ce.device).clamp(min=1)
    loss = alpha * temperature ** 2 * div.sum() / divisor + (1 - alpha) * ce.sum() / divisor
    return LossParts(loss, float(div.detach().mean()) if count else 0.0, float(ce.detach().mean()) if count else 0.0)


# --- The trainer -------------------------------------------------------------------------------

class RowCollator:
    """SFT's collator, plus the `rows` ids of the batch (they find the teacher's cached top-k)."""

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, examples):
        rows = [e.pop("row") for e in examples]
        batch = self.collator(examples)
        batch["rows"] = torch.tensor(rows)
        return batch


class DistillTrainer(SFTTrainer):
    """SFTTrainer whose loss follows a teacher: on the fly (`teacher_model`) or from its top-k cache."""

    def __init__(self, *args, teacher_model=None, settings: DistillParams, width: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.data_collator = RowCollator(self.data_collator)
        self.teacher_model = teacher_model
        self.teacher_topk: dict | None = None  # set once the cache is built
        self.settings = settings
        self.width = width

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        rows = inputs.pop("rows", None)
        ids, mask, labels = inputs["input_ids"], inputs["attention_mask"], inputs["labels"]
        outputs = model(input_ids=ids, attention_mask=mask, use_cache=False)
        teacher_logits = teacher_topk = None
        if self.teacher_topk is not None:
            teacher_topk = self._cached(rows, outputs.logits.device)
        else:
            with torch.no_grad():
                teacher_logits = self.teacher_model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        s = self.settings
        parts = distill_loss(outputs.logits, labels, temperature=s.temperature, alpha=s.alpha,
                             teacher_logits=teacher_logits, teacher_topk=teacher_topk, kl=s.kl,
                             jsd_beta=s.jsd_beta, width=self.width, num_items=num_items_in_batch)
        loss = parts.loss
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes
        self._metrics[mode]["kl"].append(parts.kl)
        self._metrics[mode]["ce"].append(parts.ce)
        if mode == "train":
            self._total_train_tokens += int(mask.sum())
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
        return (loss, outputs) if return_outputs else loss

    def _cached(self, rows, device):
        found = [self.teacher_topk[int(r)] for r in rows]
        return (torch.cat([f[0] for f in found]).to(device), torch.cat([f[1] for f in found]).to(device))


# --- The recipe --------------------------------------------------------------------------------

def with_rows(dataset, start: int = 0):
    return dataset.add_column("row", list(range(start, start + len(dataset))))


def run(spec: JobSpec, job: JobContext):
    from datasets import concatenate_datasets

    # 1. Parameters, checked against their bounds (a teacher is required); the student's tokenizer.
    p, folder, tokenizer = start(spec, job, DistillParams)

    # 2. The teacher: resolved, and refused unless it shares the student's tokenizer.
    teacher_folder = teachers.prepare(spec, job, p.teacher, folder)
    job.check_stop()

    # 3. Data, exactly as SFT prepares it (same tokens, same answer mask), each row numbered.
    train_ds, eval_ds = token_datasets(spec, job, p, folder, tokenizer)
    train_ds = with_rows(train_ds)
    eval_ds = with_rows(eval_ds, len(train_ds)) if eval_ds is not None else None
    job.check_stop()

    # 4. Models: the student, and the teacher frozen in eval mode on the same device.
    model, teacher_model = teachers.load_with_student(spec, job, p, folder, teacher_folder)
    job.check_stop()

    # 5. Trainer: SFT's, with the distillation loss.
    config = SFTConfig(
        **trainer_args(p, job, spec.runtime, has_eval=eval_ds is not None),
        completion_only_loss=True,
        remove_unused_columns=False,  # keeps the row ids for the collator
        include_num_input_tokens_seen="non_padding",
    )
    trainer = build_trainer(DistillTrainer, job, model, config, tokenizer, train_ds, eval_ds,
                            peft_config=peft_config(p), teacher_model=teacher_model, settings=p,
                            width=len(tokenizer))
    if p.sample_count and eval_ds is not None:  # the student's greedy answers to a few held-out prompts
        trainer.add_callback(EvalAnswers(job, trainer, p.sample_count, p.sample_max_tokens,
                                         sorted(stop_token_ids(tokenizer, folder))))
    job.check_stop()

    # 6. With teacher_cache=topk: the teacher reads every record once, into the run folder, then leaves memory.
    if p.teacher_cache == "topk":
        rows = [trainer.train_dataset] + ([trainer.eval_dataset] if eval_ds is not None else [])
        key = {"teacher": str(teacher_folder), "top_k": p.top_k, "max_length": p.max_length,
               "rows": sum(len(r) for r in rows)}
        teachers.build_cache(teacher_model, concatenate_datasets(rows), job.run_dir / teachers.CACHE_DIR,
                             p.top_k, p.batch_size, tokenizer.pad_token_id, key, job.status, width=len(tokenizer))
        trainer.teacher_topk = teachers.load_cache(job.run_dir / teachers.CACHE_DIR)
        trainer.teacher_model = None
        del teacher_model

    # 7. Train (from the last checkpoint when resuming), final eval, save: adapter for LoRA, else the model.
    return train_to_end(trainer, job, p, tokenizer)
