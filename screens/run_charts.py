"""Which charts a run's monitor offers, chosen by its method from the metrics that came.

A chart names the series it draws (`run_metrics` names: TRL's own log keys, `eval/<key>` for
evaluation). Each method family has its list, in the order a person watching that method
wants them; a chart appears once one of its series has a point, so a metric the trainer does
not log (KL with beta 0, token accuracy of a trainer that has none) takes no slot. Any other
metric can be drawn alone (`single`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from screens.run_metrics import EVAL, RunMetrics
from workbench.rewards import model as reward_model
from workbench.rewards.library import RewardError
from workbench.rewards.spec import parse_spec

PALETTE = ("cyan", "orange", "green", "magenta", "blue+", "red", "cyan+", "orange+", "green+", "magenta+")
EVAL_COLOR = "orange"
BAND_COLOR = "gray"


@dataclass(frozen=True)
class Line:
    """One series drawn as a line (or as dots: `points`, for evaluations), with an optional band:
    `std` names a series of standard deviations (drawn as value ± std), `low`/`high` two series
    of bounds (min/max)."""

    key: str
    label: str
    color: str = "cyan"
    points: bool = False
    std: str = ""
    low: str = ""
    high: str = ""
    right: bool = False  # on the right-hand axis (another unit than the chart's)
    scale: float = 1.0  # a reward function's weight
    percent: bool = False  # a share: a percentage in the title and on the axis
    whole: bool = False  # a share whose axis runs from 0 to 100 % (where its size matters, not its wiggle)

    @property
    def band(self) -> bool:
        return bool(self.std or (self.low and self.high))


@dataclass(frozen=True)
class Chart:
    name: str  # short: the palette's "Chart: <name>" and the panel's title
    lines: tuple[Line, ...]
    note: str = ""  # what the band or the lines are, for the title

    def keys(self) -> list[str]:
        return [key for line in self.lines for key in (line.key, line.std, line.low, line.high) if key]

    def drawn(self, metrics: RunMetrics) -> bool:
        return any(metrics.has(line.key) for line in self.lines)


def _train_eval(key: str, name: str, percent: bool = False) -> Chart:
    return Chart(name, (Line(key, "train", percent=percent, whole=percent),
                        Line(EVAL + key, "eval", color=EVAL_COLOR, points=True, percent=percent, whole=percent)))


LOSS = Chart("loss", (Line("loss", "train"), Line(EVAL + "loss", "eval", color=EVAL_COLOR, points=True)))
LR = Chart("learning rate", (Line("lr", "lr"),))
GRAD_NORM = Chart("grad norm", (Line("grad_norm", "grad norm"),))
TOKENS = Chart("tokens/s", (Line("tokens_per_s", "tokens/s"),))

SUPERVISED = (
    LOSS,
    LR,
    GRAD_NORM,
    _train_eval("mean_token_accuracy", "token accuracy", percent=True),
    TOKENS,
)

PREFERENCE = (
    LOSS,
    _train_eval("rewards/accuracies", "reward accuracy", percent=True),
    Chart("chosen vs rejected", (Line("rewards/chosen", "chosen", "green"), Line("rewards/rejected", "rejected", "red"),
                                 Line(EVAL + "rewards/chosen", "eval chosen", "green+", points=True),
                                 Line(EVAL + "rewards/rejected", "eval rejected", "red+", points=True)),
          note="implicit reward"),
    _train_eval("rewards/margins", "margin"),
    LR,
    GRAD_NORM,
)

REWARD_MODEL = (
    LOSS,
    _train_eval("accuracy", "accuracy", percent=True),
    _train_eval("margin", "margin"),
    Chart("score", (Line("mean_reward", "mean", low="min_reward", high="max_reward"),), note="band: min/max"),
    LR,
    GRAD_NORM,
)

KTO = (
    LOSS,
    Chart("good vs bad", (Line("rewards/chosen", "good", "green"), Line("rewards/rejected", "bad", "red"),
                          Line(EVAL + "rewards/chosen", "eval good", "green+", points=True),
                          Line(EVAL + "rewards/rejected", "eval bad", "red+", points=True)),
          note="implicit reward of the good and bad answers"),
    _train_eval("rewards/margins", "margin"),
    Chart("KL", (Line("kl", "KL"), Line(EVAL + "kl", "eval", color=EVAL_COLOR, points=True)),
          note="batch estimate, to the reference"),
    LR,
    GRAD_NORM,
)

ORPO = (
    LOSS,
    _train_eval("rewards/accuracies", "reward accuracy", percent=True),
    _train_eval("log_odds_ratio", "log odds ratio"),
    _train_eval("nll_loss", "chosen NLL"),
    _train_eval("rewards/margins", "margin"),
    LR,
    GRAD_NORM,
)

EMBEDDING = (
    Chart("retrieval", tuple(Line(EVAL + key, key, color, points=True, percent=True, whole=True) for key, color in
                             (("recall@1", "cyan"), ("recall@5", "green"), ("recall@10", "blue+"),
                              ("mrr@10", "magenta"))),
          note="held-out pairs; step 0: the base"),
    Chart("spearman", (Line(EVAL + "spearman", "eval", color=EVAL_COLOR, points=True),),
          note="held-out scored pairs; step 0: the base"),
    LOSS,
    LR,
    GRAD_NORM,
)

PER_FUNCTION = "reward per function"  # these two charts' lines come from the metrics themselves
FUNCTION_ERRORS = "reward errors"
REINFORCEMENT = (
    Chart("reward", (Line("reward", "mean", std="reward_std"),
                     Line(EVAL + "reward", "eval", color=EVAL_COLOR, points=True)), note="band: ± std"),
    Chart(PER_FUNCTION, ()),
    Chart(FUNCTION_ERRORS, (), note="outputs each function failed on, so far"),
    Chart("KL", (Line("kl", "KL"),), note="to the reference"),
    Chart("entropy", (Line("entropy", "entropy"),)),
    Chart("completion length", (
        Line("completions/mean_length", "mean", low="completions/min_length", high="completions/max_length"),
        Line("completion_length", "mean"),  # PPO's
        Line("completions/clipped_ratio", "clipped", color="red", right=True, percent=True, whole=True)),
        note="tokens; band: min/max; right: share cut at the maximum"),
    Chart("zero-spread groups", (Line("frac_reward_zero_std", "share", percent=True, whole=True),),
          note="groups whose rewards were all equal: no signal"),
    Chart("clip fraction", (Line("clip_ratio/region_mean", "clipped", percent=True),
                            Line("clip_ratio/low_mean", "low", "green", percent=True),
                            Line("clip_ratio/high_mean", "high", "magenta", percent=True),
                            Line("clipfrac", "policy", percent=True),
                            Line("value_clipfrac", "value", "orange", percent=True))),
    Chart("value loss", (Line("value_loss", "value loss"),)),
    Chart("approx KL", (Line("approx_kl", "approx KL"),), note="between updates"),
    LOSS,
    LR,
    GRAD_NORM,
)

FAMILIES: dict[str, tuple[Chart, ...]] = {
    "dpo": PREFERENCE, "reward": REWARD_MODEL, "grpo": REINFORCEMENT, "rloo": REINFORCEMENT, "ppo": REINFORCEMENT,
    "kto": KTO, "orpo": ORPO, "embed": EMBEDDING,
}

# A reward function's mean: TRL's GRPO/RLOO log rewards/<name>/mean, our PPO logs reward/<name>;
# and the count of outputs it failed on, reward_errors/<name>, once it has failed.
FUNCTION_KEYS = (re.compile(r"rewards/(?P<name>.+)/mean"), re.compile(r"reward/(?P<name>.+)"))
ERROR_KEYS = (re.compile(r"reward_errors/(?P<name>.+)"),)


def catalogue(method: str) -> tuple[Chart, ...]:
    """Every chart a method may show, in order; the supervised list for a method not named."""
    return FAMILIES.get(method, SUPERVISED)


def function_lines(metrics: RunMetrics, weights: dict[str, float], patterns=FUNCTION_KEYS) -> tuple[Line, ...]:
    """One line per reward function whose metric matches `patterns`, times its weight where `weights`
    (the run's spec) gives one."""
    lines = []
    for key in metrics.names():
        for pattern in patterns:
            match = pattern.fullmatch(key)
            if match:
                name = match["name"]
                weight = weights.get(name, 1.0)
                label = name if weight == 1.0 else f"{name} ×{weight:g}"
                lines.append(Line(key, label, PALETTE[len(lines) % len(PALETTE)], scale=weight))
                break
    return tuple(lines)


def reward_weights(params: dict) -> dict[str, float]:
    """{reward function: weight} of a run's params (its rule rewards and its reward model)."""
    weights: dict[str, float] = {}
    try:
        weights.update(parse_spec(str(params.get("rewards") or "")))
    except RewardError:
        pass  # none named, or a spec the worker refused: the charts show the functions unweighted
    weight = params.get("reward_model_weight")
    if params.get("reward_model") and isinstance(weight, (int, float)) and not isinstance(weight, bool):
        weights[reward_model.NAME] = float(weight)
    return weights


def charts_for(method: str, metrics: RunMetrics, weights: dict[str, float] | None = None) -> list[Chart]:
    """The charts of `method` that have data now; the loss chart alone before any point came."""
    charts = []
    for chart in catalogue(method):
        if chart.name == PER_FUNCTION:
            chart = replace(chart, lines=function_lines(metrics, weights or {}),
                            note="weighted" if any(w != 1.0 for w in (weights or {}).values()) else "")
        elif chart.name == FUNCTION_ERRORS:
            chart = replace(chart, lines=function_lines(metrics, {}, ERROR_KEYS))
        if chart.drawn(metrics) and chart not in charts:
            charts.append(chart)
    return charts or [LOSS]


def single(metrics: RunMetrics, key: str) -> Chart:
    """One metric alone, with its evaluation beside it when the trainer evaluated it too."""
    if key.startswith(EVAL):
        return Chart(key, (Line(key, "eval", color=EVAL_COLOR, points=True),))
    lines = [Line(key, key)]
    if metrics.has(EVAL + key):
        lines.append(Line(EVAL + key, "eval", color=EVAL_COLOR, points=True))
    return Chart(key, tuple(lines))
