"""The distillation loss against its definition, on small distributions computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from workbench.methods.distill import distill_loss
from workbench.methods.distill_params import DistillParams, GKDParams
from workbench.methods.kit.teacher import compare_vocabularies
from workbench.params import ParamError, build

# One record of 4 tokens over a 3-token vocabulary; tokens 0-1 are the prompt (label -100), so the
# logits at positions 1 and 2 predict the answer tokens 2 and 0. Position 0 and 3 carry no loss.
LABELS = torch.tensor([[-100, -100, 2, 0]])
STUDENT = [[9.0, -9.0, 9.0], [0.5, 1.0, -0.5], [2.0, 0.0, 1.0], [7.0, 7.0, -7.0]]
TEACHER = [[-9.0, 9.0, 0.0], [1.5, -1.0, 0.0], [0.0, 0.5, 2.5], [-7.0, 3.0, 7.0]]


def softmax(xs, t=1.0):
    e = [math.exp(x / t) for x in xs]
    return [v / sum(e) for v in e]


def kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def hand(kind: str, t: float, beta: float = 0.5) -> tuple[float, float]:
    """(mean divergence, mean cross-entropy) over positions 1 and 2, from the definitions."""
    divs, ces = [], []
    for pos, label in ((1, 2), (2, 0)):
        p_t, p_s = softmax(TEACHER[pos], t), softmax(STUDENT[pos], t)
        if kind == "forward":
            divs.append(kl(p_t, p_s))
        elif kind == "reverse":
            divs.append(kl(p_s, p_t))
        else:
            m = [beta * a + (1 - beta) * b for a, b in zip(p_t, p_s)]
            divs.append(beta * kl(p_t, m) + (1 - beta) * kl(p_s, m))
        ces.append(-math.log(softmax(STUDENT[pos])[label]))
    return sum(divs) / 2, sum(ces) / 2


def loss(**kw):
    args = dict(temperature=2.0, alpha=0.5, teacher_logits=torch.tensor([TEACHER]))
    args.update(kw)
    return distill_loss(torch.tensor([STUDENT]), LABELS, **args)


@pytest.mark.parametrize("kind", ["forward", "reverse", "jsd"])
@pytest.mark.parametrize("t", [1.0, 2.0, 0.5])
def test_divergence_and_mix_match_the_definition(kind, t):
    div, ce = hand(kind, t, beta=0.3)
    got = loss(kl=kind, temperature=t, alpha=0.7, jsd_beta=0.3)
    assert got.kl == pytest.approx(div, rel=1e-5)
    assert got.ce == pytest.approx(ce, rel=1e-5)
    assert float(got.loss) == pytest.approx(0.7 * t * t * div + 0.3 * ce, rel=1e-5)


def test_alpha_ends_are_pure_cross_entropy_and_pure_kl():
    div, ce = hand("forward", 2.0)
    assert float(loss(alpha=0.0).loss) == pytest.approx(ce, rel=1e-5)
    assert float(loss(alpha=1.0).loss) == pytest.approx(4.0 * div, rel=1e-5)


def test_prompt_and_padding_positions_carry_no_loss():
    base = loss()
    student = torch.tensor([STUDENT])
    student[0, 0] = torch.tensor([-50.0, 50.0, 3.0])  # predicts a prompt token
    student[0, 3] = torch.tensor([50.0, -50.0, 0.0])  # the last position predicts nothing
    moved = distill_loss(student, LABELS, temperature=2.0, alpha=0.5, teacher_logits=torch.tensor([TEACHER]))
    assert float(moved.loss) == pytest.approx(float(base.loss), rel=1e-6)
    s = torch.tensor([STUDENT], requires_grad=True)
    distill_loss(s, LABELS, temperature=2.0, alpha=0.5, teacher_logits=torch.tensor([TEACHER])).loss.backward()
    assert s.grad[0, 0].abs().sum() == 0 and s.grad[0, 3].abs().sum() == 0 and s.grad[0, 1].abs().sum() > 0


def test_a_student_equal_to_its_teacher_has_zero_divergence():
    same = distill_loss(torch.tensor([TEACHER]), LABELS, temperature=3.0, alpha=1.0,
                        teacher_logits=torch.tensor([TEACHER]))
    assert same.kl == pytest.approx(0.0, abs=1e-6) and float(same.loss) == pytest.approx(0.0, abs=1e-5)


def test_the_divisor_is_the_accumulated_token_count_when_given():
    assert float(loss(num_items=4).loss) == pytest.approx(float(loss().loss) / 2, rel=1e-6)


def test_padded_vocabulary_columns_are_cut_to_the_tokenizer():
    padded_s = torch.cat([torch.tensor([STUDENT]), torch.full((1, 4, 2), 5.0)], dim=-1)
    padded_t = torch.cat([torch.tensor([TEACHER]), torch.full((1, 4, 2), -5.0)], dim=-1)
    got = distill_loss(padded_s, LABELS, temperature=2.0, alpha=0.5, teacher_logits=padded_t, width=3)
    assert float(got.loss) == pytest.approx(float(loss().loss), rel=1e-6)


def test_top_k_teacher_is_renormalised_over_its_k_tokens():
    logp = torch.log_softmax(torch.tensor(TEACHER), dim=-1)
    full = logp.topk(3, dim=-1)
    every = (full.indices[1:3], full.values[1:3])  # the answer positions, in order
    assert loss(teacher_logits=None, teacher_topk=every).kl == pytest.approx(loss().kl, rel=1e-5)

    top2 = logp.topk(2, dim=-1)
    got = loss(teacher_logits=None, teacher_topk=(top2.indices[1:3], top2.values[1:3]), temperature=2.0)
    divs = []
    for pos in (1, 2):
        ids = top2.indices[pos].tolist()
        p_t = softmax([TEACHER[pos][i] for i in ids], 2.0)  # the teacher over its 2 tokens, renormalised
        p_s = softmax(STUDENT[pos], 2.0)
        divs.append(sum(p * math.log(p / p_s[i]) for p, i in zip(p_t, ids)))
    assert got.kl == pytest.approx(sum(divs) / 2, rel=1e-4)


def test_batches_of_several_rows_average_over_all_answer_tokens():
    labels = torch.tensor([[-100, -100, 2, 0], [-100, 1, -100, -100]])
    student = torch.tensor([STUDENT, STUDENT[::-1]])
    teacher = torch.tensor([TEACHER, TEACHER[::-1]])
    got = distill_loss(student, labels, temperature=1.0, alpha=0.0, teacher_logits=teacher)
    ces = [-math.log(softmax(STUDENT[1])[2]), -math.log(softmax(STUDENT[2])[0]), -math.log(softmax(STUDENT[3])[1])]
    assert float(got.loss) == pytest.approx(sum(ces) / 3, rel=1e-5)


def test_params_need_a_teacher_and_top_k_only_with_forward_kl():
    with pytest.raises(ParamError, match="needs a teacher"):
        build(DistillParams, {})
    with pytest.raises(ParamError, match="needs a teacher"):
        build(GKDParams, {"teacher": " "})
    with pytest.raises(ParamError, match="kl: reverse needs the teacher's whole distribution"):
        build(DistillParams, {"teacher": "run:x", "teacher_cache": "topk", "kl": "reverse"})
    p = build(DistillParams, {"teacher": "run:x", "temperature": "1.5", "alpha": "1"})
    assert (p.temperature, p.alpha, p.kl, p.teacher_cache) == (1.5, 1.0, "forward", "none")


def test_vocabulary_differences_are_named():
    vocab = {"a": 0, "b": 1, "c": 2}
    special = {"eos": "c", "pad": "c", "bos": None, "unk": None}
    assert compare_vocabularies(vocab, dict(vocab), special, dict(special)) == []
    bigger = compare_vocabularies(vocab, {**vocab, "d": 3}, special, special)
    assert bigger[0] == "the teacher's vocabulary has 4 tokens, the student's 3"
    assert "1 token(s) only the teacher has ('d')" in bigger
    moved = compare_vocabularies(vocab, {"a": 1, "b": 0, "c": 2}, special, special)
    assert moved == ["2 token(s) have other ids (e.g. 'a' is 1 in the teacher, 0 in the student)"]
    eos = compare_vocabularies(vocab, vocab, special, {**special, "eos": "b"})
    assert eos == ["the eos token differs (teacher 'b', student 'c')"]
