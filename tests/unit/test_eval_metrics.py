"""Evaluation metrics, the few-shot prompt and the tables, against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from workbench.evaluate import compare, metrics as mt, results
from workbench.evaluate.heldout import Example, draw_shots, few_shot_prompt, to_example
from workbench.evaluate.runner import score
from workbench.evaluate.report import curve_table, sparkline
from workbench.run import events as ev


def ex(reference, prompt="q", **columns) -> Example:
    return Example(prompt=[{"role": "user", "content": prompt}], reference=reference,
                   columns={"answer": reference, **columns})


def test_perplexity_and_change():
    assert mt.perplexity(6.0, 3) == (2.0, round(math.exp(2.0), 4))  # 7.3891
    assert mt.perplexity(0.0, 0) == (None, None)
    assert mt.change_percent(10.0, 12.0) == 20.0
    assert mt.change_percent(8.0, 6.0) == -25.0
    assert mt.change_percent(None, 6.0) is None
    assert mt.mean_score([1.0, None, 0.0, 0.5]) == 0.5
    assert mt.mean_score([None]) is None


def test_exact_numeric_and_regex_scores():
    examples = [ex("42"), ex("7"), ex("10")]
    answers = ["The answer is 42", " 7 ", "eleven"]
    summary, rows = score(examples, answers, ["exact_match", "numeric", "regex"], {"regex": r"^\s*\d+\s*$"})
    assert summary["records"] == 3
    assert summary["exact_match"] == 0.3333                 # only " 7 " equals its reference
    assert summary["rewards"]["numeric"] == 0.6667          # 42 and 7 are the last numbers; "eleven" has none
    assert summary["rewards"]["regex"] == 0.3333            # only " 7 " is digits alone
    assert [r["exact_match"] for r in rows] == [False, True, False]
    assert [r["rewards"]["numeric"] for r in rows] == [1.0, 1.0, 0.0]


def test_json_fields_and_xml_scores():
    ref = '{"title": "T", "year": 1999}'
    examples = [ex(ref), ex(ref)]
    summary, rows = score(examples, ['{"title": "T", "year": "1999"}', 'Sure: {"title": "U", "year": 1999}'],
                          ["fields", "xml"], {"xml_elements": "title"})
    assert summary["json_valid"] == 0.5                    # the second is wrapped in prose
    assert summary["fields"] == {"title": 0.5, "year": 1.0}
    assert summary["field_accuracy"] == 0.75               # 3 of 4 checks
    assert "exact_match" not in summary
    assert summary["rewards"]["xml"] == 0.0                # neither answer is XML with a <title>
    assert rows[1]["fields"] == {"title": False, "year": True} and rows[1]["json_valid"] is False
    summary, _ = score([ex("<a><title>x</title></a>"), ex("<b/>")], ["<a><title>x</title></a>", "<b>"], ["xml"],
                       {"xml_elements": "title"})
    assert summary["rewards"]["xml"] == 0.5                # well-formed with <title>; not well-formed


def test_code_that_passes_its_tests():
    examples = [ex(None, tests="assert f(1) == 2"), ex(None, tests=["assert f(1) == 2", "assert f(2) == 4"])]
    answers = ["```python\ndef f(x):\n    return x + 1\n```", "def f(x):\n    return x + 1"]
    summary, rows = score(examples, answers, ["code"], {})
    assert [r["rewards"]["code"] for r in rows] == [1.0, 0.5]  # the second passes one test of two
    assert summary["rewards"]["code"] == 0.75


def test_metrics_chosen_from_the_records():
    assert mt.choose(['{"a": 1}', '{"a": 2}'], {"answer"}) == ["exact_match", "fields"]
    assert mt.choose(["42", "#### 7"], {"answer"}) == ["exact_match", "numeric"]
    assert mt.choose(["<a>x</a>"], {"answer"}) == ["exact_match", "xml"]
    assert mt.choose(["Paris"], {"answer"}) == ["exact_match"]
    assert mt.choose([None, None], {"tests"}) == ["code"]
    assert mt.choose([None], set()) == []


def test_metrics_that_need_references_refuse_records_without():
    with pytest.raises(mt.MetricError, match="'exact_match' compares answers with reference answers, and 1 of 2"):
        mt.check(["exact_match"], ["x", None])
    with pytest.raises(mt.MetricError, match="'numeric' compares"):
        mt.check(["numeric"], [None])
    mt.check(["numeric"], [None], answer_column="gold")  # another column: the reward itself checks it
    mt.check(["regex", "code"], [None])
    with pytest.raises(mt.MetricError, match="some reference answers hold no JSON"):
        mt.check(["fields"], ["plain"])
    with pytest.raises(mt.MetricError, match="Unknown metric"):
        mt.check(["bleu"], ["x"])
    with pytest.raises(mt.MetricError, match="No metric fits"):
        mt.check([], [None])


def test_few_shot_prompt_is_built_as_specified():
    system = {"role": "system", "content": "Answer in JSON."}
    shots = [to_example({"messages": [{"role": "system", "content": "Other system."},
                                      {"role": "user", "content": "A"}, {"role": "assistant", "content": "1"}]}),
             to_example({"prompt": "B", "completion": "2"})]
    held = [system, {"role": "user", "content": "C"}]
    assert few_shot_prompt(shots, held) == [
        system,
        {"role": "user", "content": "A"}, {"role": "assistant", "content": "1"},
        {"role": "user", "content": "B"}, {"role": "assistant", "content": "2"},
        {"role": "user", "content": "C"},
    ]
    no_system = [{"role": "user", "content": "C"}]
    assert few_shot_prompt(shots[:1], no_system) == [{"role": "user", "content": "A"},
                                                     {"role": "assistant", "content": "1"}, no_system[0]]
    assert few_shot_prompt([], held) == held
    pool = [ex(str(i), prompt=f"p{i}") for i in range(10)]
    assert draw_shots(pool, 3, seed=1) == draw_shots(pool, 3, seed=1)  # the same examples for every prompt
    assert len({s.reference for s in draw_shots(pool, 3, seed=1)}) == 3


def test_results_table_reads_as_a_person_expects():
    base = {"metrics": {"records": 2, "loss": 2.5, "exact_match": 0.5, "fields": {"title": 1.0}, "cut": 1.0},
            "forgetting": {"perplexity": 20.0}, "eval": {"seconds": 12.3}}
    run = {"metrics": {"records": 2, "loss": 0.25, "exact_match": 1.0, "rewards": {"numeric": 0.75}, "cut": 0.0},
           "forgetting": {"perplexity": 22.0, "change_percent": 10.0}}
    rows = results.table([("base", base), ("r1", run), ("base+3-shot", None)])
    assert rows[0] == ["metric", "base", "r1", "base+3-shot"]
    assert [r[0] for r in rows[1:]] == ["records", "held-out loss", "exact match", "field title",
                                        "reward numeric (mean)", "cut by the token limit",
                                        "forgetting: English perplexity", "forgetting: change vs base", "seconds"]
    assert rows[3] == ["exact match", "50%", "100%", "-"]
    assert rows[6] == ["cut by the token limit", "100%", "0%", "-"]
    assert rows[8] == ["forgetting: change vs base", "-", "+10.0%", "-"]
    assert "cut" in results.LOWER_IS_BETTER  # fewer unfinished answers is better (the report's arrows)
    md = results.render(rows, markdown=True).splitlines()
    assert md[0] == "| metric | base | r1 | base+3-shot |" and md[1] == "| --- | --- | --- | --- |"


def test_compare_sorts_best_first_and_missing_last():
    rows = [compare.Row("a", "sft", "completed", metrics={"exact_match": 0.5, "loss": 1.0}),
            compare.Row("b", "dpo", "completed", metrics={"exact_match": 0.9, "loss": 2.0}),
            compare.Row("c", "sft", "failed")]
    columns = ["run", "exact_match", "loss"]
    assert [r.run for r in compare.sort(rows, "exact_match", columns)] == ["b", "a", "c"]
    assert [r.run for r in compare.sort(rows, "loss", columns)] == ["a", "b", "c"]
    assert [r.run for r in compare.sort(rows, "run", columns)] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="Cannot sort by 'bleu'"):
        compare.sort(rows, "bleu", columns)
    assert compare.key_params({"r1": {"mode": "lora", "lr": 1}, "r2": {"mode": "lora", "lr": 2}}) == ["lr"]


def test_sparkline_and_curve_table():
    assert sparkline([3.0, 2.0, 1.0, 0.0]) == "█▆▃▁"  # bars 7, int(2/3 * 8) = 5, int(1/3 * 8) = 2, 0
    assert sparkline([1.0, 1.0]) == "▁▁"
    assert len(sparkline([float(i) for i in range(100)], width=10)) == 10
    series = {"loss": [(1, 2.0), (2, 1.0), (3, 0.5)], "eval loss": [(2, 1.5)]}
    assert curve_table(series, rows=3) == ["| step | loss | eval loss |", "| --- | --- | --- |",
                                           "| 1 | 2.0000 | - |", "| 2 | 1.0000 | 1.5000 |", "| 3 | 0.5000 | 1.5000 |"]
    assert compare.losses([ev.Log(step=1, loss=2.0), ev.Eval(step=1, loss=3.0), ev.Log(step=2, loss=1.0)]) == (1.0, 3.0)
