"""Parameters of ORPO: preference optimisation in one stage from the base, no reference model."""

from __future__ import annotations

from workbench.methods.pair_params import PairParams, cut_answers
from workbench.params import param, paramclass


@paramclass
class ORPOParams(PairParams):
    beta: float = param(0.1, "Weight of the odds-ratio term beside the chosen answers' own loss (the paper's "
                             "lambda): higher pushes harder away from the rejected answers.",
                        min=1e-4, max=10, group="method")
    cut_answers: str = cut_answers()
