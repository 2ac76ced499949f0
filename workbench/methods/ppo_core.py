"""The arithmetic of PPO for language models, as pure functions of tensors.

Shapes: one row per sampled completion, one column per completion token; `mask` is 1 for
the tokens the policy produced (up to and including the end-of-sequence token) and 0 for
the padding after it. Every mean is a masked mean, so padding never moves a number.

References: Schulman et al. 2017 (clipped surrogate), Schulman et al. 2016 (GAE),
Ziegler et al. 2019 (per-token KL penalty, adaptive KL controller), Schulman's note
"Approximating KL divergence" (k1, k2, k3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of the entries where mask is 1 (over `dim`, or over everything)."""
    mask = mask.to(values.dtype)
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp(min=1)
    return (values * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def masked_var(values: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of the masked entries (Bessel-corrected by default, as the old TRL did)."""
    mean = masked_mean(values, mask)
    var = masked_mean((values - mean) ** 2, mask)
    if unbiased:
        count = mask.sum()
        if count > 1:
            var = var * count / (count - 1)
    return var


def whiten(values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """Scale the masked entries to unit variance (and zero mean unless `shift_mean=False`);
    masked-out entries become 0."""
    mean, var = masked_mean(values, mask), masked_var(values, mask)
    out = (values - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out * mask.to(values.dtype)


def completion_mask(tokens: torch.Tensor, stop_ids: list[int] | tuple[int, ...]) -> torch.Tensor:
    """1 for every generated token up to and including the first stop token, 0 after it.

    A completion that never stops (cut at max_new_tokens) keeps all of its tokens."""
    is_stop = torch.zeros_like(tokens, dtype=torch.bool)
    for stop in stop_ids:
        is_stop |= tokens == stop
    stops_before = torch.cumsum(is_stop.long(), dim=1) - is_stop.long()  # stop tokens strictly before t
    return (stops_before == 0).long()


def last_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last unmasked token of each row (0 for an empty row)."""
    return (mask.sum(dim=1) - 1).clamp(min=0).long()


def logprobs_from_logits(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log p(token) under softmax(logits), for each position; logits [B, T, V], tokens [B, T]."""
    logits = logits.float()
    picked = torch.gather(logits, -1, tokens.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of softmax(logits) at each position: logsumexp(l) - sum softmax(l) * l."""
    logits = logits.float()
    probs = torch.softmax(logits, dim=-1)
    return torch.logsumexp(logits, dim=-1) - (probs * logits).sum(dim=-1)


def kl_estimate(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, kind: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(policy || reference) from tokens sampled by the policy.

    With log r = ref_logprob - logprob: k1 = -log r (unbiased, can be negative), k2 = (log r)^2 / 2
    (biased, low variance), k3 = (r - 1) - log r (unbiased and never negative)."""
    log_ratio = ref_logprobs - logprobs
    if kind == "k1":
        return -log_ratio
    if kind == "k2":
        return 0.5 * log_ratio ** 2
    if kind == "k3":
        return torch.expm1(log_ratio) - log_ratio
    raise ValueError(f"Unknown KL estimator '{kind}': use k1, k2 or k3.")


def token_rewards(scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """Ziegler's per-token reward: -kl_coef * kl at every token, plus the sequence score at its last token."""
    rewards = -kl_coef * kl * mask.to(kl.dtype)
    rows = torch.arange(rewards.shape[0], device=rewards.device)
    rewards[rows, last_index(mask)] += scores.to(rewards.dtype)
    return rewards


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float):
    """(advantages, returns) by generalised advantage estimation over each completion.

    delta_t = r_t + gamma * V_{t+1} - V_t and A_t = delta_t + gamma * lam * A_{t+1}, where the value
    after the last token is 0 (the episode ends there); returns = advantages + values."""
    mask = mask.to(values.dtype)
    values, rewards = values * mask, rewards * mask
    advantages = torch.zeros_like(values)
    next_advantage = torch.zeros_like(values[:, 0])
    length = values.shape[1]
    for t in reversed(range(length)):
        next_value = values[:, t + 1] if t + 1 < length else torch.zeros_like(values[:, 0])
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        next_advantage = (delta + gamma * lam * next_advantage) * mask[:, t]
        advantages[:, t] = next_advantage
    return advantages, (advantages + values) * mask


def policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                mask: torch.Tensor, cliprange: float):
    """(loss, clip fraction, approx KL): the clipped surrogate objective, negated to be minimised.

    loss = mean max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps)); the clip fraction is the share
    of tokens where the clipped term was the larger; approx KL is k3 of the new policy from the old."""
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    loss = masked_mean(torch.max(unclipped, clipped), mask)
    clipfrac = masked_mean((clipped > unclipped).float(), mask)
    approx_kl = masked_mean(torch.expm1(log_ratio) - log_ratio, mask)
    return loss, clipfrac.detach(), approx_kl.detach()


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
               mask: torch.Tensor, cliprange_value: float):
    """(loss, clip fraction): 0.5 * mean max((V - R)^2, (V_clipped - R)^2), where V_clipped stays
    within cliprange_value of the value seen during the rollout."""
    clipped_values = old_values + torch.clamp(values - old_values, -cliprange_value, cliprange_value)
    unclipped_loss = (values - returns) ** 2
    clipped_loss = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.max(unclipped_loss, clipped_loss), mask)
    clipfrac = masked_mean((clipped_loss > unclipped_loss).float(), mask)
    return loss, clipfrac.detach()


@dataclass
class FixedKL:
    """A KL coefficient that never changes."""

    value: float

    def update(self, current_kl: float, n_steps: int) -> None:
        pass


@dataclass
class AdaptiveKL:
    """Ziegler et al.'s controller: moves the coefficient so the KL tends to `target`.

    error = clip(KL / target - 1, -0.2, 0.2); value *= 1 + error * n_steps / horizon,
    where n_steps counts the completions seen since the last update."""

    value: float
    target: float
    horizon: int

    def update(self, current_kl: float, n_steps: int) -> None:
        error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_steps / self.horizon


def kl_controller(kind: str, init: float, target: float, horizon: int):
    if kind == "fixed":
        return FixedKL(init)
    if kind == "adaptive":
        return AdaptiveKL(init, target, horizon)
    raise ValueError(f"Unknown KL control '{kind}': use adaptive or fixed.")
