"""Rewards for methods that score their own samples (GRPO, RLOO, PPO) and for the dry run.

A reward spec names rewards with weights: "format:1,numeric:2". A name is a reward of the
library (`workbench.rewards.library`) or a function of the person's reward file; the file's
function wins when both have the name. Each `Reward` has TRL's reward-function signature,
so the same objects go to TRL's trainers and to `combine` here:

    rewards = load_rewards("format:1,numeric:2", options={"answer_column": "answer"})
    total, per_reward = combine(rewards, prompts, completions, answer=["42", "7"])

A reward returns one float per completion, or None where it cannot judge one (the total
counts None as 0). A function that raises on some records is reported once by name and record
and then counted, those records score None, and the run goes on (`workbench.rewards.scoring`
says which reward raised on which completion); a reward set up wrongly (a missing column,
a bad pattern) raises `RewardError` with what to fix. Light at import: no torch.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from workbench.rewards.library import LIBRARY, OPTION_DEFAULTS, RewardError, completion_text
from workbench.rewards.reward import Reward
from workbench.rewards.scoring import judge
from workbench.rewards.spec import parse_spec

__all__ = ["LIBRARY", "OPTION_DEFAULTS", "Reward", "RewardError", "combine", "completion_text",
           "load_rewards", "parse_spec", "reward_options"]


def load_rewards(spec: str, reward_file: str = "", options: Any = None,
                 warn: Callable[[str], None] | None = None, tokenizer: Any = None) -> list[Reward]:
    """The rewards of `spec`, each bound to its options.

    `options` is a dict or a params object whose attributes named like `OPTION_DEFAULTS`
    (format_pattern, answer_column, ...) configure the library rewards; missing ones keep
    their defaults. `warn` receives one line per reward failure (default: stderr); `tokenizer`
    counts tokens for `length` when TRL does not pass completion ids (the dry run)."""
    from workbench.rewards import user

    weights = parse_spec(spec)
    functions = user.load_functions(reward_file) if reward_file.strip() else {}
    unknown = [name for name in weights if name not in functions and name not in LIBRARY]
    if unknown:
        known = f"The library has: {', '.join(LIBRARY)}."
        if reward_file.strip():
            defined = ", ".join(functions) or "no function"
            known += f" The reward file {reward_file} defines: {defined}."
        else:
            known += " Functions of your own go in a reward file (reward_file)."
        raise RewardError(f"Unknown reward(s): {', '.join(unknown)}. {known}")
    bound = reward_options(options)
    report = warn or _to_stderr
    rewards = []
    for name, weight in weights.items():
        if name in functions:
            rewards.append(Reward(name, weight, functions[name], {}, report, user_defined=True))
        else:
            rewards.append(Reward(name, weight, LIBRARY[name], bound, report, tokenizer=tokenizer))
    return rewards


def reward_options(options: Any = None) -> dict[str, Any]:
    """The library options: the defaults overridden by `options` (a dict or a params object)."""
    values = dict(OPTION_DEFAULTS)
    if options is None:
        return values
    if isinstance(options, dict):
        unknown = sorted(set(options) - set(OPTION_DEFAULTS))
        if unknown:
            raise RewardError(f"Unknown reward option(s): {', '.join(unknown)}. "
                              f"Known: {', '.join(OPTION_DEFAULTS)}.")
        values.update(options)
    else:
        values.update({k: getattr(options, k) for k in OPTION_DEFAULTS if hasattr(options, k)})
    return values


def combine(rewards: list[Reward], prompts: list, completions: list, **columns: Any
            ) -> tuple[list[float], dict[str, list[float]]]:
    """(weighted total per completion, each reward's scores by name); None scores count as 0.
    `workbench.rewards.scoring.judge` says more: the weighted scores, None and the errors."""
    judgement = judge(rewards, prompts, completions, **columns)
    per_reward = {name: [0.0 if s is None else s for s in scores] for name, scores in judgement.raw.items()}
    return [t or 0.0 for t in judgement.totals()], per_reward


def _to_stderr(message: str) -> None:
    print(f"Warning: {message}", file=sys.stderr, flush=True)
