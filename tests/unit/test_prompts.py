"""Record -> prompt: the one rule (`workbench.data.prompts`) on every record kind, and the callers that use it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.conftest import write_jsonl
from workbench import params as params_mod
from workbench.data.errors import DataError
from workbench.data.kinds import detect, normalise
from workbench.data.prep import read_prompt_rows, sft_rows
from workbench.data.prompts import answer_of, as_messages, prompt_of, prompt_row, prompt_rows
from workbench.evaluate.heldout import to_example
from workbench.ranking.sample import session_prompts
from workbench.ranking.sample_params import SampleParams
from workbench.run.spec import DataSource
from workbench.synth.generate import make_item
from workbench.synth.params import SynthParams

SYSTEM = {"role": "system", "content": "Be brief."}
USER = {"role": "user", "content": "Hi"}
ASSISTANT = {"role": "assistant", "content": "Hello"}
CHAT = {"messages": [SYSTEM, USER, ASSISTANT]}
TWO_TURNS = {"messages": [USER, ASSISTANT, {"role": "user", "content": "And?"},
                          {"role": "assistant", "content": "Bye"}]}
PC = {"prompt": "2+2?", "completion": "4"}
PC_MESSAGES = {"prompt": [USER], "completion": [ASSISTANT]}
PROMPT = {"prompt": "Name a colour.", "answer": "red", "tests": ["assert True"]}
PREFERENCE = {"prompt": "Pick one.", "chosen": "a", "rejected": "b"}
RANKED = {"prompt": [USER], "completions": ["x", "y"], "ranking": [1, 0]}
UNPAIRED = {"prompt": "Rate me.", "completion": "ok", "label": True}
TEXT = {"text": "Just some text."}
LABELLED = {"text": "Great film.", "label": "positive"}


def canonical(record: dict) -> dict:
    return normalise(record, detect(record))


def test_a_chat_prompt_is_the_turns_before_the_last_assistant_turn():
    assert prompt_of(canonical(CHAT)) == [SYSTEM, USER]
    assert prompt_of(canonical(TWO_TURNS)) == TWO_TURNS["messages"][:3]
    assert prompt_of({"messages": [SYSTEM, USER]}) == [SYSTEM, USER]  # no answer yet: all of it is the prompt
    assert prompt_of(canonical(CHAT), chat=True) == [SYSTEM, USER]


def test_prompt_completion_and_prompt_records_give_their_prompt_as_text_or_as_the_user_turn():
    for record in (PC, PROMPT, UNPAIRED, PREFERENCE):
        record = canonical(record)
        assert prompt_of(record) == record["prompt"]
        assert prompt_of(record, chat=True) == [{"role": "user", "content": record["prompt"]}]
    for record in (PC_MESSAGES, RANKED):
        record = canonical(record)
        assert prompt_of(record) == prompt_of(record, chat=True) == [USER]


def test_records_without_a_prompt_are_refused_by_their_fields():
    for record in (TEXT, LABELLED):
        with pytest.raises(DataError, match="has no prompt") as info:
            prompt_of(canonical(record))
        assert ", ".join(sorted(record)) in str(info.value)


def test_the_reference_answer_of_each_kind():
    assert answer_of(canonical(CHAT)) == "Hello"
    assert answer_of(canonical(TWO_TURNS)) == "Bye"
    assert answer_of(canonical(PC)) == "4"
    assert answer_of(canonical(PC_MESSAGES)) == "Hello"
    assert answer_of(canonical(PROMPT)) is None and answer_of(canonical(TEXT)) is None


def test_as_messages_wraps_text_and_copies_a_conversation():
    assert as_messages("Hi") == [USER]
    messages = [SYSTEM, USER]
    assert as_messages(messages) == messages and as_messages(messages) is not messages


def test_prompt_rows_carry_the_answer_or_the_records_own_columns():
    assert prompt_row(canonical(PC), chat=False) == {"prompt": "2+2?", "answer": "4"}
    assert prompt_row(canonical(CHAT), chat=False) == {"prompt": [SYSTEM, USER], "answer": "Hello"}
    assert prompt_row(canonical(PROMPT), chat=True) == {**PROMPT, "prompt": as_messages(PROMPT["prompt"])}
    for record in (PREFERENCE, RANKED, TEXT, LABELLED):
        with pytest.raises(DataError, match="needs prompt, prompt/completion or chat records"):
            prompt_row(canonical(record), chat=False)
    rows = prompt_rows([canonical(PC), canonical(PROMPT)], chat=False)
    assert [r["prompt"] for r in rows] == ["2+2?", "Name a colour."]  # no conversation: text stays text
    assert [(r["answer"], r["tests"], r["record_index"]) for r in rows] == [("4", None, 1), ("red", ["assert True"], 2)]


def test_every_caller_asks_the_prompt_the_rule_gives(tmp_path):
    """SFT, sampling for ranking, synthetic data, held-out evaluation and the RL rows all take their
    prompt from the one function."""
    records = [canonical(r) for r in (CHAT, TWO_TURNS, PC)]
    conversational = sft_rows(records)
    assert [r["prompt"] for r in conversational] == [prompt_of(r, chat=True) for r in records]
    assert sft_rows([canonical(PC)])[0]["prompt"] == prompt_of(canonical(PC)) == "2+2?"

    assert [to_example(r).prompt for r in records] == [prompt_of(r, chat=True) for r in records]
    answers = params_mod.build(SynthParams, {"task": "answers", "answer_template": "{question}"})
    assert [make_item(r, answers).prompt for r in records] == [prompt_of(r, chat=True) for r in records]

    source = DataSource(dataset="d", file=str(write_jsonl(tmp_path / "d.jsonl", [CHAT, TWO_TURNS, PC, PROMPT])),
                        kind="mixed")
    sampled = session_prompts(SimpleNamespace(train=[source]), params_mod.build(SampleParams, {}))
    assert sampled == [prompt_of(canonical(r)) for r in (CHAT, TWO_TURNS, PC, PROMPT)]
    rows = read_prompt_rows([source], seed=1, chat=True)
    assert sorted(map(str, (r["prompt"] for r in rows))) == \
        sorted(str(prompt_of(canonical(r), chat=True)) for r in (CHAT, TWO_TURNS, PC, PROMPT))
