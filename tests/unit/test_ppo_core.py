"""PPO's arithmetic against its definitions, on small tensors whose answers are worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from workbench.jobs.worker import load_runner
from workbench.methods import ppo_core as core


def close(actual, expected, tol=1e-5):
    """Element-wise closeness of a tensor (any shape) or number to a hand-computed value."""
    actual = torch.as_tensor(actual, dtype=torch.float64)
    expected = torch.as_tensor(expected, dtype=torch.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert torch.allclose(actual, expected, rtol=0, atol=tol), (actual.tolist(), expected.tolist())


# -- masks and masked statistics ----------------------------------------------------------------

def test_the_completion_mask_keeps_tokens_up_to_and_including_the_first_stop():
    tokens = torch.tensor([[5, 2, 7, 2], [5, 6, 7, 8], [2, 9, 9, 9]])
    close(core.completion_mask(tokens, [2]), [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]])
    close(core.completion_mask(tokens, [2, 7]), [[1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0]])  # any stop id ends it


def test_last_index_is_the_last_kept_token():
    close(core.last_index(torch.tensor([[1, 1, 0], [0, 0, 0], [1, 1, 1]])), [1, 0, 2])


def test_masked_mean_and_var_ignore_padding():
    values = torch.tensor([[1.0, 2.0, 100.0], [3.0, 100.0, 100.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    close(core.masked_mean(values, mask), 2.0)  # (1 + 2 + 3) / 3
    close(core.masked_mean(values, mask, dim=1), [1.5, 3.0])
    # deviations -1, 0, 1: squares add to 2; / (3 - 1) unbiased, / 3 biased
    close(core.masked_var(values, mask), 1.0)
    close(core.masked_var(values, mask, unbiased=False), 2 / 3)


def test_whiten_gives_zero_mean_unit_variance_on_the_mask_and_zero_elsewhere():
    values = torch.tensor([[4.0, 8.0, 100.0], [12.0, 100.0, 100.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    # mean 8, unbiased variance (16 + 0 + 16) / 2 = 16, so std 4
    close(core.whiten(values, mask), [[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], tol=1e-4)
    close(core.whiten(values, mask, shift_mean=False), [[7.0, 8.0, 0.0], [9.0, 0.0, 0.0]], tol=1e-4)


# -- log-probabilities, entropy, KL --------------------------------------------------------------

def test_logprobs_and_entropy_from_logits():
    logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]]])) + 7.0  # a shift changes nothing
    close(core.logprobs_from_logits(logits, torch.tensor([[1, 0]])), [[math.log(0.25), math.log(1 / 3)]])
    # H = -(0.5 log 0.5 + 2 * 0.25 log 0.25) = 0.5 log 2 + 0.5 log 4; uniform over 3: log 3
    close(core.entropy_from_logits(logits), [[0.5 * math.log(2) + 0.5 * math.log(4), math.log(3)]])
    one_hot = torch.tensor([[[0.0, -1e4, -1e4]]])
    close(core.entropy_from_logits(one_hot), [[0.0]])


def test_kl_estimators_k1_k2_k3_on_known_values():
    logp, ref = torch.tensor([math.log(0.5), math.log(0.25)]), torch.tensor([math.log(0.25), math.log(0.5)])
    # log r = ref - logp = [-log 2, +log 2]; r = [0.5, 2]
    close(core.kl_estimate(logp, ref, "k1"), [math.log(2), -math.log(2)])
    close(core.kl_estimate(logp, ref, "k2"), [0.5 * math.log(2) ** 2] * 2)
    close(core.kl_estimate(logp, ref, "k3"), [-0.5 + math.log(2), 1.0 - math.log(2)])
    assert (core.kl_estimate(logp, ref, "k3") >= 0).all()
    with pytest.raises(ValueError, match="k4"):
        core.kl_estimate(logp, ref, "k4")


def test_k1_and_k3_are_unbiased_for_the_exact_kl():
    p, q = torch.tensor([0.5, 0.5]), torch.tensor([0.25, 0.75])
    exact = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)  # KL(p || q) = 0.143841
    for kind in ("k1", "k3"):  # the expectation over tokens drawn from p
        close((p * core.kl_estimate(p.log(), q.log(), kind)).sum(), exact)


# -- rewards and advantages ---------------------------------------------------------------------

def test_token_rewards_put_the_kl_penalty_on_each_token_and_the_score_on_the_last():
    scores = torch.tensor([2.0, -1.0])
    kl = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    close(core.token_rewards(scores, kl, mask, kl_coef=0.5),
          [[-0.05, -0.1, -0.15 + 2.0], [-0.2, -0.25 - 1.0, 0.0]])


def test_gae_on_a_three_token_completion():
    rewards, values = torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([[0.5, 0.6, 0.7]])
    advantages, returns = core.gae(rewards, values, torch.ones(1, 3), gamma=0.9, lam=0.8)
    # t=2: delta = 1 + 0.9*0 - 0.7 = 0.3                    A2 = 0.3
    # t=1: delta = 0 + 0.9*0.7 - 0.6 = 0.03                 A1 = 0.03 + 0.72*0.3 = 0.246
    # t=0: delta = 0 + 0.9*0.6 - 0.5 = 0.04                 A0 = 0.04 + 0.72*0.246 = 0.21712
    close(advantages, [[0.21712, 0.246, 0.3]])
    close(returns, [[0.71712, 0.846, 1.0]])


def test_gae_ends_the_episode_at_the_stop_token():
    rewards, values = torch.tensor([[0.0, 1.0, 5.0]]), torch.tensor([[0.5, 0.6, 9.0]])  # t=2 is padding
    advantages, returns = core.gae(rewards, values, torch.tensor([[1, 1, 0]]), gamma=0.9, lam=0.8)
    # t=1 is the last token, so V_2 counts as 0: delta = 1 - 0.6 = 0.4;  A0 = 0.04 + 0.72*0.4 = 0.328
    close(advantages, [[0.328, 0.4, 0.0]])
    close(returns, [[0.828, 1.0, 0.0]])


def test_gae_with_gamma_and_lambda_one_is_the_return_minus_the_value():
    rewards, values = torch.tensor([[0.1, -0.2, 1.0]]), torch.tensor([[0.3, 0.2, 0.1]])
    advantages, returns = core.gae(rewards, values, torch.ones(1, 3), gamma=1.0, lam=1.0)
    close(returns, [[0.9, 0.8, 1.0]])  # the rewards still to come
    close(advantages, [[0.6, 0.6, 0.9]])


# -- losses -----------------------------------------------------------------------------------

def test_policy_loss_clips_only_where_the_ratio_leaves_the_range_in_the_advantage_direction():
    ratios = torch.tensor([[1.1, 1.5, 0.5, 0.5, 1.5, 3.0]])
    advantages = torch.tensor([[1.0, 1.0, 1.0, -1.0, -1.0, 9.0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0]])  # the last token is padding
    logprobs = ratios.log().requires_grad_()
    loss, clipfrac, approx_kl = core.policy_loss(logprobs, torch.zeros(1, 6), advantages, mask, cliprange=0.2)
    # per token max(-A r, -A clip(r)): -1.1, -1.2 (clipped), -0.5, 0.8 (clipped), 1.5
    close(loss, (-1.1 - 1.2 - 0.5 + 0.8 + 1.5) / 5)
    close(clipfrac, 2 / 5)
    close(approx_kl, sum(r - 1 - math.log(r) for r in (1.1, 1.5, 0.5, 0.5, 1.5)) / 5)
    loss.backward()
    # d(-A r)/d log r = -A r where the unclipped term wins; 0 where the clip holds
    close(logprobs.grad, [[-1.1 / 5, 0.0, -0.5 / 5, 0.0, 1.5 / 5, 0.0]])


def test_value_loss_is_the_larger_of_the_clipped_and_unclipped_errors():
    values = torch.tensor([[0.1, 0.5, -0.5, 7.0]])
    old, returns = torch.zeros(1, 4), torch.ones(1, 4)
    mask = torch.tensor([[1, 1, 1, 0]])
    loss, clipfrac = core.value_loss(values, old, returns, mask, cliprange_value=0.2)
    # clipped values 0.1, 0.2, -0.2; errors max((V-R)^2, (Vc-R)^2) = 0.81, 0.64, 2.25
    close(loss, 0.5 * (0.81 + 0.64 + 2.25) / 3)
    close(clipfrac, 1 / 3)


# -- KL control -------------------------------------------------------------------------------

def test_the_adaptive_controller_moves_towards_the_target_with_a_clipped_error():
    ctl = core.kl_controller("adaptive", init=0.05, target=6.0, horizon=1000)
    ctl.update(current_kl=6.6, n_steps=100)  # error 0.1: x (1 + 0.1 * 100 / 1000)
    close(ctl.value, 0.05 * 1.01)
    ctl = core.kl_controller("adaptive", init=0.05, target=6.0, horizon=10000)
    ctl.update(current_kl=9.0, n_steps=8)  # error 0.5 clipped to 0.2
    close(ctl.value, 0.05 * (1 + 0.2 * 8 / 10000), tol=1e-9)
    ctl.update(current_kl=0.0, n_steps=8)  # error -1 clipped to -0.2
    close(ctl.value, 0.05 * (1 + 0.2 * 8 / 10000) * (1 - 0.2 * 8 / 10000), tol=1e-9)


def test_the_fixed_controller_never_moves():
    ctl = core.kl_controller("fixed", init=0.05, target=6.0, horizon=1000)
    ctl.update(current_kl=100.0, n_steps=100)
    assert ctl.value == 0.05
    with pytest.raises(ValueError, match="adaptive or fixed"):
        core.kl_controller("pid", 0.05, 6.0, 1000)


# -- the runner's pure helpers ------------------------------------------------------------------

def test_each_pass_over_the_prompts_takes_every_prompt_once_and_a_resumed_run_picks_the_same():
    from workbench.methods.ppo import batch_indices

    picked = [i for step in range(5) for i in batch_indices(step, 4, 10, seed=3)]
    assert sorted(picked[:10]) == list(range(10)) and sorted(picked[10:20]) == list(range(10))
    assert picked[:10] != picked[10:20]  # each pass in its own order
    assert batch_indices(3, 4, 10, seed=3) == picked[12:16]  # the same rows after a restart


def test_scores_add_the_weighted_rewards_and_chat_completions_arrive_as_messages(tmp_path):
    from workbench.methods.ppo import score
    from workbench.rewards import load_rewards

    file = tmp_path / "rewards.py"
    file.write_text("def says_yes(prompts, completions, **kw):\n"
                    "    return [1.0 if c[-1]['content'] == 'yes' else 0.0 for c in completions]\n"
                    "def answer_len(prompts, completions, answer, **kw):\n"
                    "    return [float(len(a)) for a in answer]\n")
    rewards = load_rewards("says_yes:2,answer_len:0.5", str(file))
    rows = [{"prompt": [{"role": "user", "content": "?"}], "answer": "ab"},
            {"prompt": [{"role": "user", "content": "?"}], "answer": "abcd"}]
    scores, stats, judgement = score(rewards, rows, ["yes", "no"], [[1, 2], [3]])
    close(scores, [2 * 1 + 0.5 * 2, 2 * 0 + 0.5 * 4])
    assert stats["reward"] == pytest.approx(2.5) and stats["reward/says_yes"] == 0.5
    assert stats["reward/answer_len"] == 3.0
    judged = judgement.judged(1)  # what the sample event of the second completion carries
    assert (judged.scores, judged.total) == ({"says_yes": 0.0, "answer_len": 2.0}, 2.0)


def test_the_ppo_method_reads_prompts_and_describes_every_parameter():
    from workbench import registry
    from workbench.params import describe

    method = registry.get("ppo")
    assert method.data_kinds == ("prompt", "prompt_completion", "chat")
    infos = {i.name: i for i in describe(method.params)}
    for info in infos.values():
        assert info.help, info.name
        if info.kind in (int, float):
            assert info.min is not None, info.name
    assert {"answer_column", "length_max"} <= set(infos)  # the library rewards' options
    assert callable(load_runner(method.runner))
