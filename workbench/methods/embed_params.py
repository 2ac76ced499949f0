"""Parameters of the embedding method: a sentence embedding model trained on pairs, triplets or scored pairs."""

from __future__ import annotations

from workbench.methods.kit import common_params as common
from workbench.params import Fields, param, paramclass

# "auto": MultipleNegativesRankingLoss for pairs and triplets, CoSENT for scored pairs.
EMBED_LOSSES = ("auto", "mnrl", "cached_mnrl", "cosent", "angle")
POOLINGS = ("mean", "lasttoken", "cls", "max")


@paramclass
class EmbedParams:
    mode: str = common.mode("full", choices=("full",))
    learning_rate: float = param(2e-5, "Step size of the optimiser (embedding models: ~1e-5..1e-4).", min=1e-8,
                                 max=1.0)
    epochs: float = param(1.0, "Passes over the pairs (ignored when max_steps > 0).", min=0.01, max=1000)
    max_steps: int = common.max_steps()
    batch_size: int = param(16, "Pairs per device per step. With the ranking losses every other pair of the batch "
                                "is a negative, so a larger batch teaches more.", min=2, max=65536)
    grad_accum: int = common.grad_accum()
    max_length: int = param(128, "Tokens kept per text; longer ones are truncated.", min=8, max=131072)
    warmup: float = param(0.1, "Warm-up: a ratio of total steps if below 1, else a number of steps.", min=0)
    _optimiser: Fields = common.OPTIMISER
    loss: str = param("auto", "auto: mnrl (MultipleNegativesRankingLoss: each anchor picks its positive among the "
                              "batch) for pairs and triplets, cosent for scored pairs; cached_mnrl is mnrl with "
                              "big batches in small pieces of memory; angle is AnglE for scored pairs.",
                      choices=EMBED_LOSSES, group="method")
    pooling: str = param("mean", "How token vectors become one text vector when the base is a plain language "
                                 "model (a sentence-transformers base keeps its own): mean, lasttoken, cls or max.",
                         choices=POOLINGS, group="method")
    mini_batch_size: int = param(16, "cached_mnrl: texts encoded at once (memory), whatever the batch size.",
                                 min=1, max=65536, group="method")
    eval_fraction: float = param(0.1, "Share of the pairs held out for eval when the project has no eval set.",
                                 min=0, max=0.5, group="schedule")
    _schedule: Fields = common.SCHEDULE
