"""What the model sees of a record, and the checks that refuse data before a run starts."""

from __future__ import annotations

import shutil

import pytest

from workbench import models
from workbench.data import preflight
from workbench.data.errors import DataError
from workbench.data.memory import ModelShape
from workbench.data.prep import sft_rows
from workbench.data.render import render, render_rows, segments, stop_token_ids

CHAT = [{"messages": [{"role": "user", "content": f"Question {i}?"},
                      {"role": "assistant", "content": f"Answer number {i}, in full."}]} for i in range(4)]
PC = [{"prompt": f"Say {i}:", "completion": f" {i} said."} for i in range(4)]
PC_CHAT = [{"prompt": [{"role": "user", "content": f"Say {i}"}],
            "completion": [{"role": "assistant", "content": f"{i}!"}]} for i in range(4)]
TEXT = [{"text": f"Plain text number {i} goes on for a while."} for i in range(4)]


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return models.load_tokenizer(tiny_model)


@pytest.fixture(scope="module")
def stops(tokenizer, tiny_model):
    return stop_token_ids(tokenizer, tiny_model)


@pytest.mark.parametrize("records", [CHAT, PC, PC_CHAT, TEXT], ids=["chat", "prompt_completion", "pc_messages", "text"])
def test_the_mask_shown_is_the_mask_the_trainer_trains(records, tiny_model, tokenizer, stops, tmp_path):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    rows = sft_rows(records)
    full = render_rows(rows, tokenizer, 10**6, stops)
    max_length = min(r.loss.index(True) for r in full) + 2  # cuts every answer after two tokens
    config = SFTConfig(output_dir=str(tmp_path), max_length=max_length, completion_only_loss=True, use_cpu=True,
                       bf16=False, report_to="none", dataset_num_proc=None)
    trainer = SFTTrainer(model=models.load_causal_lm(tiny_model), args=config,
                         train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    trained = trainer.train_dataset
    shown = render_rows(rows, tokenizer, max_length, stops)
    assert len(trained) == len(shown)
    for row, r in zip(trained, shown):
        assert r.input_ids == row["input_ids"]
        assert r.loss == [label != -100 for label in row["labels"]]
    assert all(r.truncated and r.loss_tokens for r in shown)


def test_segments_mark_the_answer_and_the_end_of_turn(tokenizer, stops):
    r = render_rows(sft_rows(CHAT[:1]), tokenizer, 512, stops)[0]
    parts = segments(r, tokenizer)
    assert [p["loss"] for p in parts] == [False, True]
    assert parts[1]["text"].startswith("Answer number 0, in full.<|im_end|>")
    assert "Question 0?" in parts[0]["text"] and r.trains_stop and not r.truncated
    assert "".join(p["text"] for p in parts) == tokenizer.decode(r.input_ids)


def _rendered(tokenizer, stops, records, max_length):
    return render_rows(sft_rows(records), tokenizer, max_length, stops)


def test_preflight_passes_good_data(tokenizer, stops):
    found = preflight.check_rendered(_rendered(tokenizer, stops, CHAT, 512), 512)
    assert (found.errors, found.warnings) == ([], [])


def test_answers_cut_before_their_end_are_refused(tokenizer, stops):
    rendered = _rendered(tokenizer, stops, CHAT, 40)  # the prompt is ~38 tokens: the answer starts, then is cut
    assert all(r.loss_tokens and not r.trains_stop for r in rendered)
    found = preflight.check_rendered(rendered, 40)
    assert "end-of-sequence token would not be trained in 4 of 4 records" in found.errors[0]
    assert "max_length=40 cuts 4 answer(s)" in found.errors[0]
    assert "4 of 4 records (100%) are longer than max_length=40" in found.warnings[0]
    with pytest.raises(DataError, match="would not learn to stop"):
        found.raise_errors()


def test_no_loss_at_all_is_refused(tokenizer, stops):
    found = preflight.check_rendered(_rendered(tokenizer, stops, CHAT, 16), 16)
    assert found.errors == ["No record carries loss after masking and truncation to max_length=16: every answer "
                            "lies beyond the kept tokens. Raise max_length or shorten the prompts."]


def test_a_missing_end_of_sequence_token_is_refused(tokenizer, stops):
    shown = _rendered(tokenizer, stops, PC, 512)
    assert all(r.trains_stop for r in shown)
    found = preflight.check_rendered(_rendered(tokenizer, set(), PC, 512), 512)  # a tokenizer with no known stop
    assert "leaves it out of the completion" in found.errors[0]


def test_some_truncation_warns_with_the_count(tokenizer, stops):
    long = [{"messages": [{"role": "user", "content": "Long?"}, {"role": "assistant", "content": "word " * 200}]}]
    few = preflight.check_rendered(_rendered(tokenizer, stops, CHAT * 5 + long, 100), 100)
    assert (few.errors, few.warnings) == ([], [])  # 1 of 21 is under 5%
    found = preflight.check_rendered(_rendered(tokenizer, stops, CHAT * 4 + long, 100), 100)
    assert found.errors == []
    assert found.warnings == ["1 of 17 records (6%) are longer than max_length=100 and get truncated; "
                              "1 of them lose the end of their answer."]


def test_chat_data_without_a_chat_template_is_refused(tiny_model, tmp_path):
    folder = tmp_path / "no-template"
    shutil.copytree(tiny_model, folder)
    (folder / "chat_template.jinja").unlink()
    plain = models.load_tokenizer(folder)
    assert not plain.chat_template
    found = preflight.check_template([("qa", PC), ("talk", CHAT)], plain)
    assert len(found.errors) == 1
    assert "no chat template, and dataset(s) 'talk' hold chat records" in found.errors[0]
    assert preflight.check_template([("talk", CHAT)], models.load_tokenizer(tiny_model)).errors == []


def test_identical_preference_pairs_are_refused():
    pairs = [{"prompt": "p", "chosen": "a", "rejected": "b"}, {"prompt": "p", "chosen": "a", "rejected": "a"}]
    found = preflight.check_pairs([("prefs", pairs)])
    assert found.errors == ["Dataset 'prefs': 1 preference pair(s) have identical chosen and rejected answers "
                            "(record(s) 2); remove them or fix one side."]


def test_memory_warning_compares_the_estimate_with_free_memory():
    shape = ModelShape(params=135_000_000, hidden=576, layers=30, vocab=49152)
    assert preflight.check_memory(shape, 4, 512, full=True, free=64 * 2**30, where="available RAM").warnings == []
    tight = preflight.check_memory(shape, 4, 512, full=True, free=2**30, where="available RAM")
    assert "The longest batch (4 x 512 tokens) may not fit in memory" in tight.warnings[0]
    assert "1.0 GiB available RAM" in tight.warnings[0]


def test_text_cannot_train_beside_chat():
    with pytest.raises(DataError, match="Plain text records cannot be trained together with chat"):
        sft_rows(TEXT + CHAT)
    assert sft_rows(TEXT + PC)[0] == {"prompt": "", "completion": TEXT[0]["text"]}


def test_render_counts_tokens_before_truncation():
    r = render([1, 2, 3, 4, 5], [-100, -100, 3, 4, 5], 4, {5})
    assert (r.tokens, r.loss_tokens, r.truncated, r.trains_stop, r.had_stop) == (5, 2, True, False, True)
