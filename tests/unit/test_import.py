"""Importing data: every bad line reported with its number, every good record kept."""

from __future__ import annotations

import json

import pytest

from workbench import project as projects
from workbench.cli.main import main as cli
from workbench.data.importer import DatasetExists, import_file, read_records

GOOD_CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
GOOD_PC = {"prompt": "2+2=", "completion": "4"}


@pytest.fixture
def books(home):
    projects.create("books")
    return "books"


def write_lines(path, lines: list[str | bytes], bom: bool = False):
    data = b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def test_each_problem_is_reported_with_its_line_and_good_records_are_kept(books, tmp_path):
    src = write_lines(tmp_path / "mixed.jsonl", [
        json.dumps(GOOD_CHAT),                                                        # 1 good
        '{"messages": [',                                                             # 2 bad JSON
        "[1, 2, 3]",                                                                  # 3 not an object
        json.dumps({"body": "no known fields"}),                                      # 4 unknown shape
        json.dumps({"prompt": 5, "answer": "4"}),                                     # 5 prompt not text
        json.dumps({"messages": [{"role": "assistant", "content": "a"},
                                 {"role": "user", "content": "q"}]}),                 # 6 wrong order
        json.dumps({"messages": [{"role": "user", "content": "q"},
                                 {"role": "assistant", "content": "  "}]}),           # 7 empty content
        b'{"prompt": "caf\xe9", "completion": "x"}',                                  # 8 latin-1 byte
        "",                                                                           # 9 blank: skipped
        json.dumps(GOOD_PC),                                                          # 10 good
        json.dumps({"messages": [{"role": "user", "content": "q"}]}),                 # 11 no answer
        json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "system", "content": "s"},
                                 {"role": "assistant", "content": "a"}]}),            # 12 system not first
        json.dumps({"prompt": "p", "completion": 3}),                                 # 13 not text
    ])
    report = import_file(books, src, name="mixed")
    problems = {p.line: p.reason for p in report.problems}
    assert sorted(problems) == [2, 3, 4, 5, 6, 7, 8, 11, 12, 13]
    assert "not valid JSON" in problems[2]
    assert "expected a JSON object, found list" in problems[3]
    assert "unknown record shape (fields: body)" in problems[4] and "expected one of" in problems[4]
    assert "field 'prompt'" in problems[5]
    assert "should start with a user message" in problems[6]
    assert "empty or missing content" in problems[7]
    assert "not UTF-8" in problems[8]
    assert "should end with an assistant message" in problems[11]
    assert "system message may only come first" in problems[12]
    assert "field 'completion' should be text" in problems[13]

    assert report.imported == 2 and report.kinds == {"chat": 1, "prompt_completion": 1}
    stored = read_records(projects.load(books).dataset_path("mixed"))
    assert stored == [GOOD_CHAT, GOOD_PC]
    entry = projects.load(books).dataset("mixed")
    assert (entry.kind, entry.records, entry.split) == ("mixed", 2, "train")
    text = str(report)
    assert "imported 2 record(s) into 'mixed'" in text and "10 problem(s)" in text and "line 8: not UTF-8" in text


def test_a_utf8_bom_is_not_a_problem(books, tmp_path):
    src = write_lines(tmp_path / "bom.jsonl", [json.dumps(GOOD_CHAT, ensure_ascii=False)] * 3, bom=True)
    report = import_file(books, src, split="eval")
    assert report.problems == [] and report.imported == 3
    entry = projects.load(books).dataset("bom")
    assert (entry.kind, entry.split) == ("chat", "eval")


def test_non_ascii_text_is_kept_as_written(books, tmp_path):
    record = {"prompt": "Titre : « Les Misérables »", "completion": "Hugo, Victor"}
    src = write_lines(tmp_path / "fr.jsonl", [json.dumps(record, ensure_ascii=False)])
    import_file(books, src)
    assert read_records(projects.load(books).dataset_path("fr")) == [record]


def test_a_file_with_no_good_record_creates_no_dataset(books, tmp_path):
    src = write_lines(tmp_path / "bad.jsonl", ["nope", "{}"])
    report = import_file(books, src)
    assert report.imported == 0 and [p.line for p in report.problems] == [1, 2]
    assert projects.load(books).datasets == []
    assert not (projects.load(books).path / "datasets" / "bad.jsonl").exists()


def test_reimport_replaces_the_dataset_only_when_asked(books, tmp_path):
    import_file(books, write_lines(tmp_path / "d.jsonl", [json.dumps(GOOD_PC)] * 5))
    with pytest.raises(DatasetExists, match=r"already has a dataset 'd' \(5 record\(s\)\).*--replace"):
        import_file(books, write_lines(tmp_path / "d.jsonl", [json.dumps(GOOD_PC)] * 2))
    assert [(d.name, d.records) for d in projects.load(books).datasets] == [("d", 5)]
    import_file(books, tmp_path / "d.jsonl", replace=True)
    assert [(d.name, d.records) for d in projects.load(books).datasets] == [("d", 2)]
    assert len(read_records(projects.load(books).dataset_path("d"))) == 2


def test_a_failed_replacement_keeps_the_previous_dataset(books, tmp_path):
    import_file(books, write_lines(tmp_path / "d.jsonl", [json.dumps(GOOD_PC)] * 5))
    report = import_file(books, write_lines(tmp_path / "d.jsonl", ["oops"]), replace=True)
    assert report.imported == 0
    assert [(d.name, d.records) for d in projects.load(books).datasets] == [("d", 5)]
    assert len(read_records(projects.load(books).dataset_path("d"))) == 5


def test_cli_import_replaces_only_with_replace(books, tmp_path, capsys):
    src = write_lines(tmp_path / "d.jsonl", [json.dumps(GOOD_PC)] * 4)
    assert cli(["import", books, str(src)]) == 0
    write_lines(src, [json.dumps(GOOD_PC)])
    assert cli(["import", books, str(src)]) == 1
    err = capsys.readouterr().err
    assert "already has a dataset 'd' (4 record(s))" in err and "--replace" in err
    assert projects.load(books).dataset("d").records == 4
    assert cli(["import", books, str(src), "--replace"]) == 0
    assert projects.load(books).dataset("d").records == 1


def test_dataset_names_come_from_file_names(books, tmp_path):
    import_file(books, write_lines(tmp_path / "my data (v2).jsonl", [json.dumps(GOOD_PC)]))
    assert [d.name for d in projects.load(books).datasets] == ["my-data-v2"]


def test_cli_import_prints_the_report_and_fails_when_nothing_is_usable(books, tmp_path, capsys):
    good = write_lines(tmp_path / "good.jsonl", [json.dumps(GOOD_PC), "oops"])
    assert cli(["import", books, str(good)]) == 0
    out = capsys.readouterr().out
    assert "imported 1 record(s)" in out and "line 2: not valid JSON" in out

    bad = write_lines(tmp_path / "bad.jsonl", ["oops"])
    assert cli(["import", books, str(bad)]) == 1
    assert "No usable record" in capsys.readouterr().err

    assert cli(["import", books, str(tmp_path / "missing.jsonl")]) == 1
    assert "No such file" in capsys.readouterr().err
    sheet = tmp_path / "d.xlsx"
    sheet.write_text("a,b\n")
    assert cli(["import", books, str(sheet)]) == 1
    assert "unsupported file type '.xlsx'" in capsys.readouterr().err


def U(text):
    return {"role": "user", "content": text}


def A(text):
    return {"role": "assistant", "content": text}


KIND_CASES = [  # (input record, detected kind, canonical record)
    ({"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi"},
                        {"from": "gpt", "value": "Hello"}]},
     "chat", {"messages": [{"role": "system", "content": "Be brief."}, U("Hi"), A("Hello")]}),
    ({"instruction": "Translate", "input": "chat", "output": "cat", "system": "You translate."},
     "chat", {"messages": [{"role": "system", "content": "You translate."}, U("Translate\n\nchat"), A("cat")]}),
    ({"instruction": "Say hi", "input": "", "output": "hi"}, "chat", {"messages": [U("Say hi"), A("hi")]}),
    ({"prompt": [U("2+2?")], "completion": [A("4")]}, "prompt_completion",
     {"prompt": [U("2+2?")], "completion": [A("4")]}),
    ({"prompt": "Q", "chosen": "good", "rejected": "bad"}, "preference",
     {"prompt": "Q", "chosen": "good", "rejected": "bad"}),
    ({"chosen": [U("Q"), A("good")], "rejected": [U("Q"), A("bad")]}, "preference",
     {"prompt": [U("Q")], "chosen": [A("good")], "rejected": [A("bad")]}),
    ({"prompt": "Q", "completions": ["a", "b"], "ranking": [1, 0]}, "ranked",
     {"prompt": "Q", "completions": ["a", "b"], "ranking": [1, 0]}),
    ({"prompt": "Q", "responses": [{"text": "a", "rank": 2}, {"content": "b", "rank": 1}]}, "ranked",
     {"prompt": "Q", "completions": ["a", "b"], "ranking": [1, 0]}),
    ({"prompt": "Q", "completions": ["a", "b", "c"], "scores": [1, 3, 3]}, "ranked",
     {"prompt": "Q", "completions": ["a", "b", "c"], "ranking": [1, 2, 0], "ties": [[1, 2]]}),
    ({"prompt": "Q", "completion": "A", "label": "bad"}, "unpaired_label",
     {"prompt": "Q", "completion": "A", "label": False}),
    ({"prompt": "Q", "completion": "A", "label": 1}, "unpaired_label",
     {"prompt": "Q", "completion": "A", "label": True}),
    ({"text": "Once upon a time"}, "text", {"text": "Once upon a time"}),
]


@pytest.mark.parametrize("record, kind, canonical", KIND_CASES)
def test_each_kind_is_detected_and_normalised(books, tmp_path, record, kind, canonical):
    report = import_file(books, write_lines(tmp_path / "one.jsonl", [json.dumps(record)]))
    assert report.problems == [] and report.kinds == {kind: 1}
    stored = read_records(projects.load(books).dataset_path("one"))
    assert stored == [canonical]
    assert projects.load(books).dataset("one").kind == kind
    from workbench.data import kinds
    assert kinds.normalise(canonical, kinds.detect(canonical)) == canonical  # stored records read back as is


def test_feedback_faults_are_reported(books, tmp_path):
    src = write_lines(tmp_path / "fb.jsonl", [
        json.dumps({"prompt": "Q", "chosen": "same", "rejected": "same"}),
        json.dumps({"chosen": [U("Q"), A("x")], "rejected": [U("Q"), A("x")]}),
        json.dumps({"chosen": [U("Q1"), A("x")], "rejected": [U("Q2"), A("y")]}),
        json.dumps({"prompt": "Q", "completions": ["only one"], "ranking": [0]}),
        json.dumps({"prompt": "Q", "completions": ["a", "b"], "ranking": [0, 0]}),
        json.dumps({"prompt": "Q", "completion": "A", "label": "maybe"}),
        json.dumps({"conversations": [{"from": "alien", "value": "hi"}]}),
        json.dumps({"instruction": "Do it"}),
    ])
    reasons = [p.reason for p in import_file(books, src).problems]
    assert "chosen and rejected are the same" in reasons[0] and "chosen and rejected are the same" in reasons[1]
    assert "share no leading messages" in reasons[2]
    assert "at least 2 answers" in reasons[3]
    assert "each completion index 0..1 once" in reasons[4]
    assert "'label' should be true/false, 1/0 or good/bad" in reasons[5]
    assert "turn 1 is from 'alien'" in reasons[6]
    assert "missing field 'output'" in reasons[7]


def test_kind_override_reads_every_record_as_that_kind(books, tmp_path):
    src = write_lines(tmp_path / "labelled.jsonl", [json.dumps({"prompt": "Q", "completion": "A", "label": True}),
                                                    json.dumps({"text": "plain"})])
    report = import_file(books, src, kind="prompt_completion")
    assert report.kinds == {"prompt_completion": 1} and "missing field 'prompt'" in report.problems[0].reason
    assert read_records(projects.load(books).dataset_path("labelled")) == [{"prompt": "Q", "completion": "A"}]
    with pytest.raises(ValueError, match="unknown kind"):
        import_file(books, src, kind="nonsense")


def test_duplicates_are_reported_and_kept_or_removed(books, tmp_path):
    lines = [json.dumps(GOOD_PC), json.dumps(GOOD_CHAT), json.dumps(GOOD_PC),
             json.dumps({"completion": "4", "prompt": "2+2="}), json.dumps(GOOD_CHAT)]
    report = import_file(books, write_lines(tmp_path / "d.jsonl", lines))
    assert report.imported == 5 and report.duplicates == 3
    assert report.duplicate_examples == [("line 3", "line 1"), ("line 4", "line 1"), ("line 5", "line 2")]
    assert "3 duplicate record(s) kept" in str(report)
    report = import_file(books, tmp_path / "d.jsonl", dedupe=True, replace=True)
    assert report.imported == 2 and "3 duplicate record(s) removed" in str(report)
    assert read_records(projects.load(books).dataset_path("d")) == [GOOD_PC, GOOD_CHAT]
