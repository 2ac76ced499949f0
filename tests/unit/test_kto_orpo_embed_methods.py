"""KTO, ORPO and the embedding method without a model: their registration, data rows, loss choice, presets
and the retrieval measures checked by hand against their definitions."""

from __future__ import annotations

import dataclasses

import pytest

from workbench import registry
from workbench.data.errors import DataError
from workbench.jobs.worker import load_runner
from workbench.methods import embed_eval
from workbench.methods.embed import choose_loss, embedding_rows, summary
from workbench.methods.kto import balanced_weight, label_rows
from workbench.methods.kto_params import KTO_LOSS_TYPES
from workbench.params import ParamError, build, describe
from workbench.registry.presets import presets_for


@pytest.mark.parametrize("name, kinds", [("kto", ("unpaired_label", "preference")), ("orpo", ("preference", "ranked")),
                                         ("embed", ("pair", "scored_pair"))])
def test_every_parameter_has_help_and_bounds_and_the_runner_loads(name, kinds):
    method = registry.get(name)
    assert method.data_kinds == kinds
    for info in describe(method.params):
        assert info.help
        if info.kind in (int, float):
            assert info.min is not None
    assert callable(load_runner(method.runner))
    assert set(presets_for(name)) == {"quick test", "balanced", "quality", "low memory"}
    for values in presets_for(name).values():
        build(method.params, values)  # each preset is accepted as a whole


def test_kto_loss_types_are_the_ones_trl_offers_and_a_batch_holds_two_answers():
    from trl import KTOConfig

    field = next(f for f in dataclasses.fields(KTOConfig) if f.name == "loss_type")
    assert set(KTO_LOSS_TYPES) == set(field.metadata["choices"])
    with pytest.raises(ParamError, match="batch_size"):
        build(registry.get("kto").params, {"batch_size": 1})


def test_orpo_comes_from_trl_s_experimental_package():
    from trl.experimental.orpo import ORPOConfig

    assert {"beta", "max_length"} <= {f.name for f in dataclasses.fields(ORPOConfig)}


def test_kto_rows_from_labelled_answers_and_from_pairs():
    records = [{"prompt": "Q", "completion": "A", "label": True},
               {"prompt": "Q2", "chosen": "good", "rejected": "bad"}]
    assert label_rows(records, conversational=False) == [
        {"prompt": "Q", "completion": "A", "label": True},
        {"prompt": "Q2", "completion": "good", "label": True}, {"prompt": "Q2", "completion": "bad", "label": False}]
    assert label_rows(records[:1], conversational=True) == [
        {"prompt": [{"role": "user", "content": "Q"}], "completion": [{"role": "assistant", "content": "A"}],
         "label": True}]
    with pytest.raises(DataError, match="labelled good or bad"):
        label_rows([{"text": "plain"}], conversational=False)


def test_kto_balanced_weight_evens_out_good_and_bad():
    rows = [{"label": True}] * 2 + [{"label": False}] * 6
    assert balanced_weight(rows, 1.0) == 3.0  # 2 good x 3 = 6 bad x 1
    with pytest.raises(DataError, match="0 bad"):
        balanced_weight([{"label": True}] * 3, 1.0)


def test_embedding_rows_keep_triplets_only_when_every_pair_has_a_negative():
    pairs = [{"anchor": "q1", "positive": "p1", "negative": "n1"}, {"anchor": "q2", "positive": "p2"}]
    assert embedding_rows(pairs) == ([{"anchor": "q1", "positive": "p1"}, {"anchor": "q2", "positive": "p2"}], "pair")
    assert embedding_rows(pairs[:1]) == ([{"anchor": "q1", "positive": "p1", "negative": "n1"}], "pair")
    assert embedding_rows([{"a": "x", "b": "y", "score": 2}]) == ([{"a": "x", "b": "y", "score": 2.0}], "scored_pair")
    with pytest.raises(DataError, match="mixes pairs and scored pairs"):
        embedding_rows([pairs[1], {"a": "x", "b": "y", "score": 1.0}])


def test_the_loss_follows_the_data_and_a_mismatch_is_refused_in_one_line():
    assert choose_loss("auto", "pair") == "mnrl" and choose_loss("auto", "scored_pair") == "cosent"
    assert choose_loss("cached_mnrl", "pair") == "cached_mnrl" and choose_loss("angle", "scored_pair") == "angle"
    with pytest.raises(ParamError, match="loss=cosent learns from scored pairs; the data holds pairs"):
        choose_loss("cosent", "pair")
    with pytest.raises(ParamError, match="use cosent or angle"):
        choose_loss("mnrl", "scored_pair")


def test_ranks_count_every_non_matching_text_scoring_at_least_the_best_match():
    import torch

    similarity = torch.tensor([[0.9, 0.1, 0.5],   # query 0 wants text 0: first
                               [0.2, 0.2, 0.7],   # query 1 wants text 1: text 0 ties it, text 2 beats it -> 3rd
                               [0.4, 0.8, 0.3]])  # query 2 wants texts 0 or 2: the best, 0.4, is beaten once -> 2nd
    assert embed_eval.ranks(similarity, [{0}, {1}, {0, 2}]) == [1, 3, 2]
    assert embed_eval.ranks(torch.ones(2, 3), [{0}, {1}]) == [3, 3]  # one vector for every text finds nothing
    metrics = embed_eval.retrieval_metrics([1, 3, 2, 12])
    assert metrics == {"recall@1": 0.25, "recall@5": 0.75, "recall@10": 0.75,
                       "mrr@10": pytest.approx((1 + 1 / 3 + 1 / 2) / 4)}


def test_the_search_task_has_one_query_per_anchor_and_every_text_in_the_corpus():
    rows = [{"anchor": "a", "positive": "p1", "negative": "n"}, {"anchor": "b", "positive": "p2", "negative": "p1"},
            {"anchor": "a", "positive": "p3"}]
    queries, corpus, relevant = embed_eval.search_task(rows)
    assert queries == ["a", "b"] and corpus == ["p1", "n", "p2", "p3"]
    assert relevant == [{0, 3}, {2}]


def test_the_summary_reads_each_measure_before_and_after():
    before = {"eval_loss": 2.0, "eval_recall@1": 0.5, "eval_mrr@10": 0.6, "eval_runtime": 1.0}
    after = {"eval_loss": 0.5, "eval_recall@1": 1.0, "eval_mrr@10": 1.0, "eval_runtime": 0.5}
    assert summary(before, after) == "Held-out pairs: recall@1 0.500 -> 1.000, mrr@10 0.600 -> 1.000"
