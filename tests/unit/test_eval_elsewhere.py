"""Results on datasets other than the eval split (`eval --dataset`) in the run's report and the comparison:
found by their folders, set beside the base's on the same records, in columns and sections of their own, and
nothing of them where there are none. The results are written with `results.write`, as the worker does."""

from __future__ import annotations

import json

from tests.ui.evaluated import citations, evaluated_run
from workbench import project
from workbench.data.importer import import_file
from workbench.evaluate import compare, report, results
from workbench.evaluate.results import Subject

RUN = "20261130-192616-sft"
ON = "arith"
PROMPTS = [f"What is {i}+{i}?" for i in range(4)]


def arith_results(run_id: str = RUN, on: str = ON, rates: tuple[float, float, float] = (0.25, 0.5, 1.0)) -> None:
    """Results on `on` of the base, its 3-shot baseline and the run (exact match: `rates`), with their answers."""
    for subject, rate in zip((Subject(on=on), Subject(shots=3, on=on), Subject(run=run_id, on=on)), rates):
        right = round(rate * len(PROMPTS))
        generations = [{"index": i, "prompt": p, "reference": str(2 * i),
                        "answer": str(2 * i) if i < right else f"wrong {i}",
                        "scores": {"exact_match": i < right}} for i, p in enumerate(PROMPTS)]
        found = {"eval": {"subject": subject.name, "created": "2026-12-01T01:00:00+00:00", "model": "SmolLM2",
                          "datasets": on.split("+")},
                 "metrics": {"records": len(PROMPTS), "exact_match": rate, "rewards": {"numeric": rate / 2}}}
        results.write("demo", subject, found, generations)


def demo(home, tmp_path) -> None:
    project.create("demo")
    citations("demo")
    evaluated_run("demo", RUN)
    source = tmp_path / "arith.jsonl"
    source.write_text("".join(json.dumps({"prompt": p, "completion": str(2 * i)}) + "\n"
                              for i, p in enumerate(PROMPTS)))
    import_file("demo", source, name=ON)


def test_the_other_datasets_of_each_subject_are_found_by_their_folders(home, tmp_path):
    demo(home, tmp_path)
    assert results.elsewhere("demo", Subject(run=RUN)) == []
    arith_results()
    arith_results(on="arith+citations-train")
    assert results.elsewhere("demo", Subject(run=RUN)) == ["arith", "arith+citations-train"]
    assert results.elsewhere("demo", Subject()) == ["arith", "arith+citations-train"]
    assert results.elsewhere("demo", Subject(shots=3)) == ["arith", "arith+citations-train"]
    assert results.elsewhere("demo", Subject(shots=5)) == []
    # the baseline on another dataset is no baseline of the eval split
    assert compare.few_shot_subjects("demo") == [Subject(shots=3)]
    assert compare.few_shot_subjects("demo", ON) == [Subject(shots=3, on=ON)]
    # a folder without results (an evaluation that was stopped) counts for nothing
    (Subject(run=RUN, on="half").folder("demo")).mkdir(parents=True)
    assert "half" not in results.elsewhere("demo", Subject(run=RUN))


def test_the_comparison_gains_columns_per_other_dataset_only_when_some_row_has_them(home, tmp_path):
    demo(home, tmp_path)
    before = compare.table("demo")
    assert not [c for c in before[0] if " on " in c]
    arith_results()
    after = compare.table("demo")
    assert after[0][:len(before[0])] == before[0]  # the eval split's columns as they were, the others after
    assert after[0][len(before[0]):] == ["exact_match on arith", "rewards.numeric on arith"]  # records left out
    rows = {r[0]: dict(zip(after[0], r)) for r in after[1:]}
    assert rows["base"]["exact_match on arith"] == "25%"
    assert rows["base+3-shot"]["exact_match on arith"] == "50%"
    assert rows[RUN]["exact_match on arith"] == "100%" and rows[RUN]["rewards.numeric on arith"] == "50%"
    assert rows[RUN]["json_valid"] == "100%"  # the eval split's figures untouched
    assert [r[0] for r in compare.table("demo", "exact_match on arith")[1:]] == [RUN, "base+3-shot", "base"]


def test_a_loss_on_another_dataset_sorts_lowest_first(home, tmp_path):
    demo(home, tmp_path)
    arith_results()
    for subject, loss in ((Subject(on=ON), 2.0), (Subject(run=RUN, on=ON), 0.5)):
        found = results.read("demo", subject)
        found["metrics"]["loss"] = loss
        results.write("demo", subject, found, results.read_generations("demo", subject))
    ordered = compare.table("demo", "loss on arith")
    assert [r[0] for r in ordered[1:]] == [RUN, "base", "base+3-shot"]
    assert dict(zip(ordered[0], ordered[1]))["loss on arith"] == "0.5"


def test_the_report_has_a_metrics_and_an_examples_section_per_other_dataset(home, tmp_path):
    demo(home, tmp_path)
    plain = report.build("demo", RUN)
    assert "on arith" not in plain and plain.count("## Metrics") == 1
    arith_results()
    text = report.build("demo", RUN)
    assert text.startswith(plain.rstrip("\n"))  # the eval split's sections as they were, the other's after
    section = text[text.index("## Metrics on arith"):]
    assert "| metric | base | base+3-shot | " + RUN + " |" in section
    assert "| exact match | 25% | 50% | 100% |" in section
    assert "| reward numeric (mean) | 12% | 25% | 50% |" in section
    assert f"{RUN}: 2026-12-01T01:00:00+00:00, SmolLM2, arith" in section
    examples = text[text.index("## Example generations on arith"):]
    assert "What is 1+1?" in examples and "| wrong 1 | 2 |" in examples


def test_the_report_pairs_the_answers_on_the_same_dataset(home, tmp_path):
    demo(home, tmp_path)
    arith_results()
    pairs = report.example_pairs("demo", RUN, None, ON)
    assert [(tuned["prompt"], base["answer"], tuned["answer"]) for tuned, base in pairs][:2] == \
        [("What is 0+0?", "0", "0"), ("What is 1+1?", "wrong 1", "2")]
    assert report.example_pairs("demo", RUN, 1)[0][0]["prompt"].startswith("Mercer, Hugh")  # the eval split's
