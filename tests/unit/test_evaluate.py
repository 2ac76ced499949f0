"""Scoring held-out answers: JSON validity and per-field exact match, on hand-written cases."""

from __future__ import annotations

import json

import pytest

from workbench import project as projects
from workbench.data.importer import import_file
from workbench.evaluate.heldout import EvalError, eval_examples
from workbench.evaluate.metrics import parse_json_object, score_answer, summarize

REF = '{"title": "Les Misérables", "author": "Hugo, Victor", "year": 1862}'


def fields(answer: str, reference: str = REF) -> dict[str, bool]:
    return score_answer(answer, reference).fields


def test_a_perfect_answer():
    s = score_answer(REF, REF)
    assert (s.exact, s.json_valid, s.fields) == (True, True, {"title": True, "author": True, "year": True})


def test_key_order_spacing_and_year_as_text_do_not_matter():
    answer = '  {"year": "1862",   "author": "Hugo,  Victor", "title": "Les Misérables"}\n'
    s = score_answer(answer, REF)
    assert s.json_valid and not s.exact
    assert s.fields == {"title": True, "author": True, "year": True}


@pytest.mark.parametrize("answer, expected", [
    ('{"title": "Les Misérables: roman", "author": "Hugo, Victor", "year": 1862}',
     {"title": False, "author": True, "year": True}),                       # subtitle kept
    ('{"title": "Les Misérables", "author": "Victor Hugo", "year": 1862}',
     {"title": True, "author": False, "year": True}),                       # name not inverted
    ('{"title": "les misérables", "author": "Hugo, Victor", "year": 1863}',
     {"title": False, "author": True, "year": False}),                      # case counts; wrong year
    ('{"title": "Les Misérables", "year": 1862}',
     {"title": True, "author": False, "year": True}),                       # missing key
    ('{"Title": "Les Misérables", "Author": "Hugo, Victor", "Year": 1862}',
     {"title": False, "author": False, "year": False}),                     # keys are exact
    ('{"title": "Les Misérables", "author": "Hugo, Victor", "year": 1862.0}',
     {"title": True, "author": True, "year": True}),                        # 1862.0 is 1862
])
def test_field_by_field(answer, expected):
    s = score_answer(answer, REF)
    assert s.json_valid and s.fields == expected


def test_json_inside_prose_or_a_fence_scores_fields_but_is_not_valid():
    for answer in (f"Here is the record:\n```json\n{REF}\n```", f"Sure! {REF} Hope this helps.",
                   f"{{broken {REF}"):
        s = score_answer(answer, REF)
        assert not s.json_valid and s.fields == {"title": True, "author": True, "year": True}, answer


@pytest.mark.parametrize("answer", [
    "Hugo, Victor. Les Misérables. Paris, 1862.",              # prose only
    '{"title": "Les Misérables", "author": "Hugo, Victor", "year": 18',  # cut off by max_new_tokens
    '["Les Misérables", "Hugo, Victor", 1862]',                # JSON, but not an object
    "",
])
def test_no_json_object_means_invalid_and_every_field_wrong(answer):
    s = score_answer(answer, REF)
    assert not s.json_valid and not s.exact
    assert s.fields == {"title": False, "author": False, "year": False}


def test_several_authors_as_a_list_equal_the_joined_text():
    ref = '{"title": "T", "author": "Dupont, Jean; Martin, Anne", "year": 2001}'
    assert fields('{"title": "T", "author": ["Dupont, Jean", "Martin, Anne"], "year": 2001}', ref)["author"]
    assert not fields('{"title": "T", "author": ["Martin, Anne", "Dupont, Jean"], "year": 2001}', ref)["author"]


def test_null_true_and_nested_values_are_compared_strictly():
    ref = '{"a": null, "b": true, "c": {"x": 1}}'
    assert fields('{"a": null, "b": true, "c": {"x": 1}}', ref) == {"a": True, "b": True, "c": True}
    assert fields('{"a": "null", "b": "true", "c": {"x": 2}}', ref) == {"a": False, "b": False, "c": False}


def test_free_text_references_get_exact_match_only():
    s = score_answer("  Paris ", "Paris")
    assert s.exact and not s.structured and s.fields == {}
    assert not score_answer("paris", "Paris").exact


def test_summary_rates():
    answers = [
        REF,                                                                       # all 3 right, valid
        '{"title": "Les Misérables", "author": "Victor Hugo", "year": 1862}',      # 2 right, valid
        f"The record: {REF}",                                                      # 3 right, not valid
        "no idea",                                                                 # 0 right
    ]
    summary = summarize([score_answer(a, REF) for a in answers])
    assert summary["records"] == 4
    assert summary["exact_match"] == 0.25
    assert summary["json_valid"] == 0.5
    assert summary["fields"] == {"title": 0.75, "author": 0.5, "year": 0.75}
    assert summary["field_accuracy"] == round(8 / 12, 4)


def test_summary_of_mixed_references_scores_fields_over_structured_records_only():
    scores = [score_answer(REF, REF), score_answer("yes", "yes"), score_answer("no", "yes")]
    summary = summarize(scores)
    assert summary["exact_match"] == round(2 / 3, 4)
    assert summary["json_valid"] == 1.0 and summary["field_accuracy"] == 1.0
    assert "fields" not in summarize([score_answer("yes", "yes")])


def test_parse_json_object():
    assert parse_json_object('{"a": 1}') == ({"a": 1}, True)
    assert parse_json_object('x {"a": {"b": 2}} y {"c": 3}') == ({"a": {"b": 2}}, False)
    assert parse_json_object("{not json}") == (None, False)


def test_eval_examples_use_the_eval_split_and_the_limit(home, tmp_path):
    projects.create("books")
    rows = [{"messages": [{"role": "system", "content": "Catalogue."}, {"role": "user", "content": f"Book {i}"},
                          {"role": "assistant", "content": json.dumps({"title": f"T{i}"})}]} for i in range(5)]
    path = tmp_path / "held.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"prompt": "p", "completion": "c"}) + "\n")
    import_file("books", train)
    with pytest.raises(EvalError, match="has no eval split"):
        eval_examples(projects.load("books"))
    import_file("books", path, split="eval")
    names, examples = eval_examples(projects.load("books"), limit=2)
    assert names == ["held"] and len(examples) == 2
    assert [m["role"] for m in examples[1].prompt] == ["system", "user"]  # the answer is not in the prompt
    assert examples[1].prompt[-1]["content"] == "Book 1" and examples[1].reference == '{"title": "T1"}'
