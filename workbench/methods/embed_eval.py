"""How well an embedding model retrieves: the held-out pairs as a search, measured before and after training.

Each anchor is a query, and the corpus is every positive and negative text of the held-out pairs. A
query is found at rank r when r - 1 texts that do not match it score at least as high as the best
text that does (ties count against the model, so a model that maps every text to one vector finds
nothing). recall@k: the share of queries found within the top k; mrr@10: the mean of 1/r over the
queries, 0 past rank 10. Scored pairs are measured by the Spearman correlation of the cosine
similarity with the given score.
"""

from __future__ import annotations

import math

RECALL_AT = (1, 5, 10)
MRR_AT = 10


def ranks(similarity, relevant: list[set[int]]) -> list[int]:
    """The rank of each query's best matching text; `similarity` is queries x corpus (a torch tensor)."""
    out = []
    for row, wanted in zip(similarity.tolist(), relevant):
        best = max(row[i] for i in wanted)
        out.append(1 + sum(1 for i, score in enumerate(row) if i not in wanted and score >= best))
    return out


def retrieval_metrics(query_ranks: list[int]) -> dict[str, float]:
    n = len(query_ranks)
    metrics = {f"recall@{k}": sum(1 for r in query_ranks if r <= k) / n for k in RECALL_AT}
    metrics[f"mrr@{MRR_AT}"] = sum(1 / r for r in query_ranks if r <= MRR_AT) / n
    return metrics


def search_task(rows: list[dict]) -> tuple[list[str], list[str], list[set[int]]]:
    """(queries, corpus, relevant corpus indices per query) of held-out anchor/positive[/negative] rows; an
    anchor that appears more than once is one query matching each of its positives."""
    corpus: dict[str, int] = {}
    queries: dict[str, set[int]] = {}
    for row in rows:
        positive = corpus.setdefault(row["positive"], len(corpus))
        if row.get("negative") is not None:
            corpus.setdefault(row["negative"], len(corpus))
        queries.setdefault(row["anchor"], set()).add(positive)
    return list(queries), list(corpus), list(queries.values())


def spearman(x: list[float], y: list[float]) -> float:
    from scipy.stats import spearmanr

    value = float(spearmanr(x, y).statistic)
    return 0.0 if math.isnan(value) else value  # NaN when either side is constant


def evaluator(rows: list[dict], batch_size: int):
    """A sentence-transformers evaluator of the held-out rows, which the trainer runs at each eval."""
    from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator
    from sentence_transformers.util import cos_sim

    class HeldOut(SentenceEvaluator):
        def __init__(self):
            super().__init__()
            self.scored = bool(rows) and "score" in rows[0]
            self.primary_metric = "spearman" if self.scored else "recall@1"

        def __call__(self, model, output_path=None, epoch=-1, steps=-1) -> dict[str, float]:
            if self.scored:
                a = model.encode([r["a"] for r in rows], batch_size=batch_size, convert_to_tensor=True)
                b = model.encode([r["b"] for r in rows], batch_size=batch_size, convert_to_tensor=True)
                cosine = cos_sim(a, b).diagonal().tolist()
                return {"spearman": spearman(cosine, [r["score"] for r in rows])}
            queries, corpus, relevant = search_task(rows)
            q = model.encode(queries, batch_size=batch_size, convert_to_tensor=True)
            c = model.encode(corpus, batch_size=batch_size, convert_to_tensor=True)
            return retrieval_metrics(ranks(cos_sim(q, c), relevant))

    return HeldOut()
