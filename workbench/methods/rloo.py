"""REINFORCE leave-one-out (critic-free RLHF) with TRL's RLOOTrainer, in any training mode.

Each prompt gets `num_generations` completions; a completion's advantage is its reward minus
the mean reward of the other completions of its prompt (the leave-one-out baseline), with a
KL penalty towards the starting model (`beta`) folded into the reward. The reward is usually
a reward model (a run of the reward method); the library's rewards and a reward file's
functions can be added with their weights, as for GRPO. Logged per step: reward, reward_std,
rewards/<name>/mean, kl, entropy, completions/mean_length, completions/clipped_ratio.

The recipe is GRPO's (`methods.grpo.train_on_rewards`): params and tokenizer -> prompts -> rewards
-> model -> trainer -> train -> save; only TRL's trainer and its config differ.
"""

from __future__ import annotations

from workbench.methods.grpo import train_on_rewards
from workbench.methods.grpo_params import RLOOParams
from workbench.run.context import JobContext
from workbench.run.spec import JobSpec


def run(spec: JobSpec, job: JobContext):
    from trl import RLOOConfig, RLOOTrainer

    return train_on_rewards(spec, job, RLOOParams, RLOOConfig, RLOOTrainer, own=lambda p: {})
