"""The rewards a method's parameters name, set up one way for GRPO, RLOO, PPO and the dry run.

The parameters (see `methods/grpo_params.py`, `methods/ppo_params.py`): `rewards` (library
rewards and reward-file functions with weights), `reward_file` (a path; a relative one is read
from the project folder), `reward_model` (a reference for `workbench.rewards.model`) and
`reward_model_weight` (1 where a method has none). The result is one list of reward functions,
each with `name` and `weight`, that TRL's trainers and `workbench.rewards.combine` both call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from workbench import locations
from workbench import params as params_mod
from workbench.rewards import load_rewards
from workbench.rewards.library import RewardError
from workbench.rewards.reward import Reward


def reward_file_path(project: str, reward_file: str) -> str:
    """An absolute path: a relative `reward_file` is read from the project folder."""
    if not reward_file.strip():
        return ""
    path = Path(reward_file).expanduser()
    if not path.is_absolute():
        path = locations.project_dir(project) / path
    if not path.exists():
        raise RewardError(f"The reward file {path} does not exist.")
    return str(path)


def method_rewards(project: str, p: Any, device: str = "cpu", dtype: str = "float32",
                   warn: Callable[[str], None] | None = None, tokenizer: Any = None,
                   status: Callable[..., None] | None = None, batch_size: int = 8,
                   first_row: dict | None = None) -> list:
    """The rewards of `p`: its rule rewards, then its reward model (loaded on `device`), each weighted.
    `tokenizer` counts tokens for the length reward where no completion ids are given (the dry run);
    with `first_row` the rule rewards are tried on it (`check_columns`) before the reward model loads."""
    found: list = []
    if p.rewards.strip():
        found = load_rewards(p.rewards, reward_file_path(project, p.reward_file), options=p, warn=warn,
                             tokenizer=tokenizer)
        if first_row is not None:
            check_columns(found, first_row)
    if p.reward_model.strip():
        from workbench.rewards.model import load_reward_model

        if status is not None:
            status(f"Loading the reward model {p.reward_model}")
        found.append(load_reward_model(project, p.reward_model, dtype, device, status=status,
                                       weight=getattr(p, "reward_model_weight", 1.0), batch_size=batch_size))
    if not found:
        raise RewardError("No reward: name rewards (e.g. rewards=format) or a reward_model (a reward run's id).")
    return found


def check_columns(rewards: list, row: dict) -> None:
    """Run the library rewards once on `row`, so a missing column or a bad pattern stops a run before
    the model loads (the reward file's functions run first in training, where they are isolated)."""
    columns = {k: [v] for k, v in row.items() if k != "prompt"}
    for reward in rewards:
        if isinstance(reward, Reward) and not reward.user_defined:
            reward([row["prompt"]], [""], **columns)


def check_group(p: Any) -> None:
    """Each step must hold whole groups (GRPO, RLOO): a completion's reward is compared with the
    others of its prompt."""
    completions = p.batch_size * p.grad_accum
    if completions % p.num_generations:
        raise params_mod.ParamError(
            f"batch_size x grad_accum ({p.batch_size} x {p.grad_accum} = {completions}) must be a multiple of "
            f"num_generations ({p.num_generations}), e.g. batch_size={p.num_generations} with grad_accum=1.")
