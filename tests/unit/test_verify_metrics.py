"""The GGUF verification metrics, against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from workbench.export import verify


def test_log_softmax_matches_torch_and_is_shift_invariant():
    torch = pytest.importorskip("torch")
    logits = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, 0.0]])
    expected = torch.log_softmax(torch.tensor(logits), dim=-1).numpy()
    np.testing.assert_allclose(verify.log_softmax(logits), expected, atol=1e-12)
    np.testing.assert_allclose(verify.log_softmax(logits + 50), expected, atol=1e-12)


def test_kl_of_known_distributions():
    p = np.log(np.array([[0.5, 0.5], [0.9, 0.1]]))
    q = np.log(np.array([[0.9, 0.1], [0.9, 0.1]]))
    kl = verify.kl_per_position(p, q)
    # KL([.5,.5] || [.9,.1]) = .5 ln(.5/.9) + .5 ln(.5/.1)
    assert kl[0] == pytest.approx(0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(5.0))
    assert kl[1] == pytest.approx(0.0, abs=1e-15)
    # KL is not symmetric: the reference distribution weighs the log-ratio.
    assert verify.kl_per_position(q, p)[0] == pytest.approx(0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5))


def test_kl_agrees_with_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 11)), rng.normal(size=(5, 11))
    log_a, log_b = torch.log_softmax(torch.tensor(a), -1), torch.log_softmax(torch.tensor(b), -1)
    expected = torch.nn.functional.kl_div(log_b, log_a, log_target=True, reduction="none").sum(-1).numpy()
    actual = verify.kl_per_position(verify.log_softmax(a), verify.log_softmax(b))
    np.testing.assert_allclose(actual, expected, rtol=1e-10)


def test_top1_agreement_counts_matching_argmax():
    a = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.0, 0.0, 1.0]])
    b = np.array([[0.0, 5.0, 1.0], [0.1, 0.2, 0.0], [0.0, 0.0, 9.0], [3.0, 0.0, 1.0]])
    assert verify.top1_agreement(a, b) == 0.5
    assert verify.top1_agreement(a, a) == 1.0


def test_perplexity_from_known_logprobs():
    assert verify.perplexity(np.log([0.5, 0.5, 0.5])) == pytest.approx(2.0)
    # geometric mean of 1/4 and 1/16 is 1/8
    assert verify.perplexity(np.log([0.25, 1 / 16])) == pytest.approx(8.0)


def test_target_logprobs_pick_the_next_token():
    logp = np.log(np.array([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1], [1 / 3, 1 / 3, 1 / 3]]))
    np.testing.assert_allclose(verify.target_logprobs(logp, [0, 2, 0]), np.log([0.7, 0.6]))


def test_compare_of_identical_logits_is_exact():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(6, 20))
    ids = rng.integers(0, 20, size=6)
    parts = verify.compare(logits, logits, ids)
    assert parts["top1"].all()
    np.testing.assert_allclose(parts["kl"], 0.0, atol=1e-12)
    np.testing.assert_array_equal(parts["lp_ref"], parts["lp_test"])


def _parts(top1, kl):
    return {"top1": np.array(top1), "kl": np.array(kl), "lp_ref": np.log([0.5, 0.5]), "lp_test": np.log([0.25, 0.25])}


def _chat(stopped, required):
    return {"prompts": 3, "stopped": stopped, "required": required}


def test_report_applies_the_threshold_of_the_type():
    good = verify._report([_parts([True] * 100, [0.0005] * 100)], [True], _chat(3, True), "f16")
    assert good["passed"] and good["quant_type"] == "F16"
    assert good["distribution"]["ppl_hf"] == 2.0 and good["distribution"]["ppl_gguf"] == 4.0
    assert good["summary"].startswith("F16: top-1 1.000") and good["summary"].endswith("passed")
    high_kl = verify._report([_parts([True] * 100, [0.002] * 100)], [True], _chat(3, True), "F16")
    assert not high_kl["passed"] and "FAILED" in high_kl["summary"]
    # the same figures are within the looser bounds of a 4-bit type
    assert verify._report([_parts([True] * 100, [0.002] * 100)], [True], _chat(3, True), "Q4_K_M")["passed"]
    low_top1 = verify._report([_parts([True] * 98 + [False] * 2, [0.0] * 100)], [True], _chat(3, True), "F16")
    assert not low_top1["passed"]
    # the verdict uses the exact figure, not the rounded one shown: 0.98996 < 0.99
    parts = [_parts([True] * 98996 + [False] * 1004, [0.0] * 100000)]
    just_under = verify._report(parts, [True], _chat(3, True), "F16")
    assert just_under["distribution"]["top1"] == 0.99 and not just_under["passed"]


def test_chat_check_decides_only_when_required():
    parts = [_parts([True] * 10, [0.0] * 10)]
    assert not verify._report(parts, [True], _chat(2, True), "F16")["passed"]
    optional = verify._report(parts, [True], _chat(0, False), "F16")
    assert optional["passed"] and "chat 0/3 stopped (not required)" in optional["summary"]


def test_type_without_threshold_reports_figures_only():
    report = verify._report([_parts([False] * 10, [5.0] * 10)], [True, False], _chat(3, True), "IQ2_XS")
    assert report["thresholds"] == {"note": "no threshold"}
    assert "no threshold for IQ2_XS" in report["summary"]
    assert "tokenizer differs on 1 text(s)" in report["summary"]
    assert report["tokenizer"] == {"texts": 2, "same_ids": 1, "match": False}
