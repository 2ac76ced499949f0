"""The reward and DPO methods: their registry entries, their pairs, and the reward loss."""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict

import pytest

from workbench import registry
from workbench.data.errors import DataError
from workbench.jobs.worker import load_runner
from workbench.methods.kit.pair_data import pair_rows, record_pairs
from workbench.methods.pair_params import DPO_LOSS_TYPES
from workbench.params import describe


@pytest.mark.parametrize("name", ["reward", "dpo"])
def test_every_parameter_has_help_and_the_data_is_pairs(name):
    method = registry.get(name)
    assert method.data_kinds == ("preference", "ranked")
    for info in describe(method.params):
        assert info.help
        if info.kind in (int, float):
            assert info.min is not None
    assert callable(load_runner(method.runner))


def test_dpo_loss_types_are_those_trl_implements():
    import inspect

    from trl import DPOConfig, DPOTrainer

    help_text = next(f for f in dataclasses.fields(DPOConfig) if f.name == "loss_type").metadata["help"]
    offered = {part.split("'")[1] for part in help_text.split("`")[1::2] if part.startswith("'")}
    assert set(DPO_LOSS_TYPES) == offered
    source = inspect.getsource(DPOTrainer)
    assert all(f'loss_type == "{t}"' in source for t in DPO_LOSS_TYPES)


def test_ranked_records_become_pairs_and_identical_pairs_are_refused():
    ranked = {"prompt": "Q", "completions": ["a", "b", "c"], "ranking": [1, 0, 2], "ties": [[0, 2]]}
    assert record_pairs(ranked).rows == [{"prompt": "Q", "chosen": "b", "rejected": "a"},
                                         {"prompt": "Q", "chosen": "b", "rejected": "c"}]
    with pytest.raises(DataError, match="same chosen and rejected"):
        record_pairs({"prompt": "Q", "chosen": "x", "rejected": "x"})
    rows = pair_rows([{"prompt": "Q", "chosen": "x", "rejected": "y"}], conversational=True).rows
    assert rows[0]["prompt"] == [{"role": "user", "content": "Q"}]
    assert rows[0]["rejected"] == [{"role": "assistant", "content": "y"}]


def test_reward_trainer_loss_is_the_pairwise_log_sigmoid():
    import torch
    from trl import RewardConfig, RewardTrainer

    chosen, rejected = torch.tensor([2.0, -0.5, 0.3]), torch.tensor([1.0, 0.5, 0.3])

    class Fixed(torch.nn.Module):
        """Returns the fixed rewards: chosen first, then rejected, as the collator stacks them."""

        def forward(self, **_):
            return type("Out", (), {"logits": torch.cat([chosen, rejected]).unsqueeze(-1)})()

    trainer = RewardTrainer.__new__(RewardTrainer)
    trainer.model = torch.nn.Linear(1, 1).eval()
    trainer.args = RewardConfig(output_dir="unused", use_cpu=True, bf16=False, report_to="none")
    trainer._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    trainer._total_train_tokens = 0
    trainer.accelerator = type("Acc", (), {"gather": staticmethod(lambda t: t),
                                           "gather_for_metrics": staticmethod(lambda t: t)})()
    loss = trainer.compute_loss(Fixed(), {"input_ids": None, "attention_mask": None})
    expected = sum(-math.log(1 / (1 + math.exp(-(c - r)))) for c, r in zip(chosen.tolist(), rejected.tolist())) / 3
    assert math.isclose(loss.item(), expected, rel_tol=1e-6)
    assert trainer._metrics["eval"]["accuracy"] == [pytest.approx(1 / 3)]


def test_pairs_preferring_an_answer_the_token_limit_cut_are_left_out_when_asked_and_counted():
    # b > a > c, ties none; a was cut: the pair (a, c) prefers a cut answer, (b, a) only rejects one.
    ranked = {"prompt": "Q", "completions": ["a", "b", "c"], "ranking": [1, 0, 2], "cut": [0]}
    every = record_pairs(ranked)
    assert (len(every.rows), every.cut) == (3, 0)  # a reward model keeps them all
    kept = record_pairs(ranked, drop_cut=True)
    assert [(p["chosen"], p["rejected"]) for p in kept.rows] == [("b", "a"), ("b", "c")]
    assert kept.cut == 1
    both = pair_rows([ranked, {"prompt": "Q2", "chosen": "x", "rejected": "y"}], conversational=False, drop_cut=True)
    assert (len(both.rows), both.cut) == (3, 1)


def test_the_ranked_kind_reads_the_cut_marks_and_refuses_bad_ones():
    from workbench.data.checks import RecordProblem
    from workbench.data.feedback import ranked

    record = {"prompt": "Q", "completions": ["a", "b"], "ranking": [1, 0]}
    assert "cut" not in ranked(record)
    assert ranked({**record, "cut": [1, 1]})["cut"] == [1]
    for bad in ([2], ["0"], 0, [True]):
        with pytest.raises(RecordProblem, match="'cut' should list completion indices 0..1"):
            ranked({**record, "cut": bad})


def test_training_data_whose_every_pair_prefers_a_cut_answer_is_refused_in_one_line(tmp_path):
    import json

    from workbench.methods.kit.pair_data import pair_datasets
    from workbench.run.spec import DataSource

    path = tmp_path / "ranked.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"Q{i}", "completions": ["a", "b"], "ranking": [0, 1], "cut": [0, 1]})
                            + "\n" for i in range(4)))
    with pytest.raises(DataError, match=r"^Every preference pair of the training data \(4\) prefers an answer the "
                                        "token limit cut: sample again with more max new tokens, or set "
                                        r"cut_answers=keep to train on them\.$"):
        pair_datasets([DataSource("r", str(path), "ranked")], [], 0.0, seed=1, drop_cut=True)
    train, held, cut = pair_datasets([DataSource("r", str(path), "ranked")], [], 0.0, seed=1)
    assert (len(train), held, cut) == (4, None, 0)
