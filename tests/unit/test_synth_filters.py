"""Filters and deduplication of generated records, the synth templates, and how records become requests."""

from __future__ import annotations

import pytest

from workbench.params import ParamError, build
from workbench.synth.filters import (
    Deduper,
    Filters,
    Tally,
    answers_agree,
    final_answer,
    jaccard,
    normalise,
    shingles,
    split_reasoning,
)
from workbench.synth.generate import make_item, new_record
from workbench.synth.params import SynthParams


def test_normalise_ignores_case_punctuation_and_spacing():
    assert normalise("  The  ANSWER:\tis  42! ") == "the answer is 42"
    assert normalise("Ｆｕｌｌ-width") == normalise("full width")


def test_shingles_and_jaccard_by_hand():
    a = shingles("the cat sat on the mat")
    assert a == {("the", "cat", "sat"), ("cat", "sat", "on"), ("sat", "on", "the"), ("on", "the", "mat")}
    b = shingles("the cat sat on a mat")  # shares 2 of its 4 windows: 2 / (4 + 4 - 2)
    assert jaccard(a, b) == pytest.approx(2 / 6)
    assert shingles("two words") == {("two", "words")}
    assert jaccard(frozenset(), frozenset()) == 1.0


def test_deduper_drops_exact_and_near_duplicates():
    d = Deduper(threshold=0.5)
    assert d.check("The cat sat on the mat today.") is None
    assert d.check("the cat sat on the MAT today") == "duplicate"
    assert d.check("The cat sat on the mat today, again.") == "near_duplicate"  # 5 of 6 windows shared
    assert d.check("A completely different sentence about dogs.") is None
    strict = Deduper(threshold=1.0)
    assert strict.check("one two three four") is None
    assert strict.check("one two three four five") is None  # near, but near-duplicates are kept at 1.0
    off = Deduper(threshold=1.0, exact=False)
    assert off.check("same") is None and off.check("same") is None


def test_reasoning_traces_split_and_their_answers_compare():
    trace = "<think>\n2 and 2 make 4, plus 1.\n</think>\nThe answer is 5."
    assert split_reasoning(trace) == ("2 and 2 make 4, plus 1.", "The answer is 5.")
    assert split_reasoning("The answer is 5.") is None
    assert split_reasoning("<think>  </think> 5") is None and split_reasoning("<think>x</think>") is None
    assert final_answer(trace) == "The answer is 5."
    assert final_answer("<think>t</think> so \\boxed{1,250}") == "1,250"
    assert answers_agree("The answer is 5.", "5") and answers_agree("1,250", "1250.0")
    assert not answers_agree("It is 4, not 5... no, 4.", "5")
    assert answers_agree("The answer is: Paris.", "paris") and answers_agree("It is in Paris", "Paris")
    assert not answers_agree("Lyon", "Paris") and not answers_agree("Parisian", "Paris")


def test_filters_name_the_first_check_a_text_fails():
    f = Filters(min_chars=5, max_chars=30, require_regex=r"\d", require_format="none")
    assert f.reason("   ") == "empty"
    assert f.reason("ab1") == "too_short"
    assert f.reason("1" * 31) == "too_long"
    assert f.reason("no digits here") == "no_match"
    assert f.reason("has 1 digit") is None
    assert Filters(require_format="json").reason("{'a': 1}") == "bad_format"
    assert Filters(require_format="json").reason('{"a": 1}') is None
    think = Filters(require_format="think", check_answer=True)
    assert think.reason("5") == "bad_format"
    assert think.reason("<think>a</think> 4", known="5") == "disagrees"
    assert think.reason("<think>a</think> 5", known="5") is None
    assert think.reason("<think>a</think> 4", known=None) is None  # no known answer: nothing to agree with


def test_tally_reports_generated_kept_and_each_drop():
    t = Tally(generated=5, kept=2)
    t.dropped.update(["duplicate", "too_short", "duplicate"])
    assert t.to_dict() == {"generated": 5, "kept": 2, "dropped": {"duplicate": 2, "too_short": 1}}
    assert t.summary() == "5 generated, 2 kept; dropped: 2 duplicate, 1 too short"


@pytest.mark.parametrize("values, message", [
    ({"answer_template": "Answer: {q}"}, "answer_template: unknown placeholder {q}"),
    ({"question_template": "Write the question."}, "question_template: the template must contain {answer}"),
    ({"reasoning_template": "{question} {"}, "reasoning_template: Single '{' encountered"),
    ({"require_regex": "(unclosed"}, "require_regex: '(unclosed' is not a regular expression"),
    ({"output": "bad name"}, "output: 'bad name' is not a valid name"),
    ({"task": "poems"}, "task: 'poems' is not one of answers, questions, reasoning"),
    ({"min_chars": "10", "max_chars": "5"}, "max_chars: 5 is below min_chars 10"),
])
def test_synth_params_are_checked_with_a_clear_message(values, message):
    with pytest.raises(ParamError) as err:
        build(SynthParams, values)
    assert message in str(err.value)


def test_literal_braces_are_allowed_in_templates():
    p = build(SynthParams, {"answer_template": 'Reply in JSON like {{"a": 1}}: {question}'})
    item = make_item({"prompt": "Q?"}, p)
    assert item.request == [{"role": "user", "content": 'Reply in JSON like {"a": 1}: Q?'}]


def test_records_become_requests_and_new_chat_records():
    answers = build(SynthParams, {"system_prompt": "Be brief.", "answer_template": "Please: {question}"})
    chat = {"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]}
    item = make_item(chat, answers)
    assert item.request == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Please: Hi?"}]
    assert new_record(item, "Hey.", "answers") == {"messages": [{"role": "user", "content": "Hi?"},
                                                                {"role": "assistant", "content": "Hey."}]}

    questions = build(SynthParams, {"task": "questions", "question_template": "Q for: {answer}"})
    item = make_item({"text": "Water boils at 100 C."}, questions)
    assert item.request == [{"role": "user", "content": "Q for: Water boils at 100 C."}]
    assert new_record(item, "When does water boil?", "questions")["messages"] == [
        {"role": "user", "content": "When does water boil?"}, {"role": "assistant", "content": "Water boils at 100 C."}]
    assert make_item({"prompt": "no answer here"}, questions) is None

    reasoning = build(SynthParams, {"task": "reasoning"})
    item = make_item({"prompt": "2 + 3?", "answer": 5}, reasoning)
    assert item.known == "5" and item.request[-1]["content"].startswith("2 + 3?\n\nThink it through")
    assert make_item({"prompt": "2 + 3?", "completion": "5"}, reasoning).known == "5"
    record = new_record(item, "<think>two plus three</think>  5", "reasoning")
    assert record["messages"][-1]["content"] == "<think>\ntwo plus three\n</think>\n\n5"
    assert record["messages"][0] == {"role": "user", "content": "2 + 3?"}
