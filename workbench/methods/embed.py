"""A sentence embedding model, fine-tuned with sentence-transformers' trainer on pairs, triplets or scored pairs.

The base is a sentence-transformers folder (kept as it is) or a plain language model, which gets a
pooling layer (mean by default) over its last hidden states. Pairs (anchor, positive) and
triplets (+ negative) train with MultipleNegativesRankingLoss: each anchor must pick its positive
out of every text of the batch. Scored pairs (a, b, score) train with CoSENT, which orders the
pairs' cosine similarities as their scores. The held-out pairs are measured before training (the
eval event at step 0) and at each eval (`embed_eval`: recall@1/5/10 and MRR@10 as a search, or
Spearman for scored pairs). The run's model/ folder is a sentence-transformers model: load it with
`SentenceTransformer(path)`.

The recipe: params -> pairs -> model -> loss and trainer -> measure the base -> train -> save.
"""

from __future__ import annotations

from pathlib import Path

from workbench.data.errors import DataError
from workbench.data.prep import split_sources
from workbench.methods import embed_eval
from workbench.methods.embed_params import EmbedParams
from workbench.methods.kit.recipe import build_trainer, count_data, start, train_to_end
from workbench.methods.kit.train_args import hf_trainer_args
from workbench.params import ParamError
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec, Runtime

SCORED_LOSSES = ("cosent", "angle")
PAIR_LOSSES = ("mnrl", "cached_mnrl")


def embedding_rows(records: list[dict]) -> tuple[list[dict], str]:
    """(rows, "pair" or "scored_pair"): the columns the loss reads, in its order. Triplets stay triplets
    only when every pair has a negative; otherwise the negatives are left out."""
    scored = ["score" in r for r in records]
    if any(scored) and not all(scored):
        raise DataError("The data mixes pairs and scored pairs; train an embedding model on one kind at a time.")
    if any(scored):
        return [{"a": r["a"], "b": r["b"], "score": float(r["score"])} for r in records], "scored_pair"
    if not all("anchor" in r and "positive" in r for r in records):
        raise DataError("The embedding method needs pairs (anchor, positive[, negative]) or scored pairs "
                        "(a, b, score).")
    triplets = all(r.get("negative") is not None for r in records)
    return [{"anchor": r["anchor"], "positive": r["positive"], **({"negative": r["negative"]} if triplets else {})}
            for r in records], "pair"


def choose_loss(name: str, kind: str) -> str:
    if name == "auto":
        return "cosent" if kind == "scored_pair" else "mnrl"
    if kind == "scored_pair" and name not in SCORED_LOSSES:
        raise ParamError(f"loss={name} learns from pairs; the data holds scored pairs: use cosent or angle.")
    if kind == "pair" and name not in PAIR_LOSSES:
        raise ParamError(f"loss={name} learns from scored pairs; the data holds pairs: use mnrl or cached_mnrl.")
    return name


def make_loss(name: str, model, p: EmbedParams):
    from sentence_transformers.sentence_transformer import losses

    if name == "mnrl":
        return losses.MultipleNegativesRankingLoss(model)
    if name == "cached_mnrl":
        return losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=p.mini_batch_size)
    if name == "cosent":
        return losses.CoSENTLoss(model)
    return losses.AnglELoss(model)


def load_embedder(folder: Path, p: EmbedParams, runtime: Runtime):
    """The model to train: a sentence-transformers folder as saved, or a language model with a pooling layer."""
    from sentence_transformers import SentenceTransformer

    if (Path(folder) / "modules.json").exists():
        model = SentenceTransformer(str(folder), device=runtime.device)
    else:
        from sentence_transformers.base.modules import Transformer
        from sentence_transformers.sentence_transformer.modules import Pooling

        encoder = Transformer(str(folder), max_seq_length=p.max_length)
        pooling = Pooling(encoder.get_embedding_dimension(), pooling_mode=p.pooling)
        model = SentenceTransformer(modules=[encoder, pooling], device=runtime.device)
    model.max_seq_length = p.max_length
    return model


def run(spec: JobSpec, job: JobContext):
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from transformers import set_seed

    # 1. Parameters, checked against their bounds; the base resolved.
    p, folder, tokenizer = start(spec, job, EmbedParams)

    # 2. Pairs: eval pairs held out first; the loss follows the kind.
    job.status("Preparing the data")
    split = split_sources(spec.train, spec.eval, p.eval_fraction, spec.runtime.seed)
    train_rows, kind = embedding_rows(split.train)
    eval_rows = embedding_rows(split.eval)[0] if split.eval else []
    loss_name = choose_loss(p.loss, kind)
    train_ds = Dataset.from_list(train_rows)
    eval_ds = Dataset.from_list(eval_rows) if eval_rows else None
    count_data(job, train_ds, eval_ds)
    job.check_stop()

    # 3. Model.
    job.status("Loading the embedding model")
    set_seed(spec.runtime.seed)
    model = load_embedder(folder, p, spec.runtime)
    job.check_stop()

    # 4. Loss and trainer (pairs: no two equal texts in a batch, where one would be the other's false negative).
    args = SentenceTransformerTrainingArguments(
        **hf_trainer_args(p, job, spec.runtime, has_eval=eval_ds is not None),
        batch_sampler="no_duplicates" if kind == "pair" else "batch_sampler",
    )
    trainer = build_trainer(SentenceTransformerTrainer, job, model, args, tokenizer, train_ds, eval_ds,
                            loss=make_loss(loss_name, model, p),
                            evaluator=embed_eval.evaluator(eval_rows, p.batch_size) if eval_rows else None)

    # 5. The base measured on the held-out pairs (step 0), unless this run resumes.
    if eval_ds is not None and not job.resume_checkpoint:
        job.status("Measuring the base on the held-out pairs")
        before = trainer.evaluate()

    # 6. Train, final eval, save the sentence-transformers folder; the held-out measures before -> after.
    out = train_to_end(trainer, job, p, tokenizer)
    if out is not None and eval_ds is not None and not job.resume_checkpoint:
        # the last evaluation's measures (on several processes the trainer logs no eval_loss beside them)
        after = next((h for h in reversed(trainer.state.log_history) if any(k[5:] in MEASURES for k in h
                                                                              if k.startswith("eval_"))), None)
        if after is not None:
            job.status(summary(before, after))
    return out


def summary(before: dict, after: dict) -> str:
    """One line: each held-out measure before -> after training."""
    keys = [k for k in before if k.startswith("eval_") and k != "eval_loss" and k[5:] in MEASURES]
    parts = [f"{k[5:]} {before[k]:.3f} -> {after[k]:.3f}" for k in keys if k in after]
    return "Held-out pairs: " + ", ".join(parts) if parts else "Held-out pairs measured."


MEASURES = {f"recall@{k}" for k in embed_eval.RECALL_AT} | {f"mrr@{embed_eval.MRR_AT}", "spearman"}
