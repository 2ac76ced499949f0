"""Every file format people have: each read into the same canonical records, each fault located."""

from __future__ import annotations

import json
import time

import pytest

from workbench import project as projects
from workbench.cli.main import main as cli
from workbench.data.importer import import_file, read_records

PC = [{"prompt": f"Cite book {i}", "completion": f"Title {i}"} for i in range(3)]
CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}


@pytest.fixture
def books(home):
    projects.create("books")
    return "books"


def stored(name: str) -> list[dict]:
    return read_records(projects.load("books").dataset_path(name))


def test_json_list_and_object_holding_a_list(books, tmp_path):
    (tmp_path / "list.json").write_text(json.dumps(PC + ["not an object"]))
    report = import_file(books, tmp_path / "list.json")
    assert report.imported == 3 and [p.where for p in report.problems] == ["record 4"]
    assert stored("list") == PC

    (tmp_path / "wrapped.json").write_text(json.dumps({"version": 2, "data": PC}, indent=2))
    report = import_file(books, tmp_path / "wrapped.json")
    assert report.imported == 3 and "records read from the list under 'data'" in str(report)


def test_json_faults_are_reported_not_raised(books, tmp_path):
    (tmp_path / "broken.json").write_text('[\n  {"prompt": "a",\n')
    report = import_file(books, tmp_path / "broken.json")
    assert report.imported == 0 and "not valid JSON" in report.problems[0].reason
    (tmp_path / "latin.json").write_bytes(b'[{"prompt": "caf\xe9", "completion": "x"}]')
    report = import_file(books, tmp_path / "latin.json")
    assert report.imported == 0 and "not UTF-8" in report.problems[0].reason
    (tmp_path / "lines.json").write_text("\n".join(json.dumps(r) for r in PC))
    assert import_file(books, tmp_path / "lines.json").imported == 3


def test_csv_with_bom_quoted_newlines_and_a_bad_row(books, tmp_path):
    src = tmp_path / "sheet.csv"
    src.write_bytes(b"\xef\xbb\xbfinstruction,input,output\n"
                    b'"Summarise","  line one\nline two",Two lines\n'  # row 2 spans two physical lines
                    b"Translate caf\xe9,,Coffee\n"                        # row 3: not UTF-8
                    b"Only,two\n"                                          # row 4: too few cells
                    b"Greet,,Hello\n")                                     # row 5
    report = import_file(books, src)
    assert {p.where: p.reason for p in report.problems} == {
        "row 3": "not UTF-8 text", "row 4": "2 cells, but the header row names 3 columns"}
    first, last = stored("sheet")
    assert first["messages"][0] == {"role": "user", "content": "Summarise\n\n  line one\nline two"}
    assert last["messages"][1] == {"role": "assistant", "content": "Hello"}


def test_tsv_with_json_cells(books, tmp_path):
    src = tmp_path / "ranked.tsv"
    src.write_text('prompt\tcompletions\tscores\nPick one\t["a", "b", "c"]\t[0.1, 0.9, 0.1]\n')
    import_file(books, src)
    assert stored("ranked") == [{"prompt": "Pick one", "completions": ["a", "b", "c"],
                                 "ranking": [1, 0, 2], "ties": [[0, 2]]}]


def test_parquet(books, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = PC + [{"prompt": "no answer", "completion": None}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "pc.parquet", row_group_size=2)
    report = import_file(books, tmp_path / "pc.parquet")
    assert report.imported == 3 and [p.where for p in report.problems] == ["row 4"]
    assert stored("pc") == PC


def test_saved_dataset_and_dataset_dict(books, tmp_path):
    from datasets import Dataset, DatasetDict

    Dataset.from_list([CHAT] * 2).save_to_disk(str(tmp_path / "single"))
    report = import_file(books, tmp_path / "single")
    assert report.imported == 2 and report.duplicate_examples == [("row 2", "row 1")]  # kept, and reported
    assert stored("single") == [CHAT, CHAT]

    DatasetDict({"train": Dataset.from_list(PC), "test": Dataset.from_list(PC[:1] + [{"prompt": "x",
                                                                                    "completion": " "}])}
                ).save_to_disk(str(tmp_path / "dd"))
    report = import_file(books, tmp_path / "dd")  # one dataset per split (more in test_import_public_shapes)
    assert report.imported == 4 and [p.where for p in report.problems] == ["row 2 of split 'test'"]
    assert [(d.name, d.split) for d in projects.load(books).datasets][-2:] == [("dd-train", "train"),
                                                                             ("dd-test", "eval")]
    assert "1 record(s) of eval split 'test' are also in a training split" in str(report)


def test_unknown_file_types_and_plain_folders_are_refused(books, tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match="not one saved with datasets.save_to_disk"):
        import_file(books, tmp_path / "folder")
    (tmp_path / "fake.parquet").write_text("not parquet")
    with pytest.raises(ValueError, match="not a readable Parquet file"):
        import_file(books, tmp_path / "fake.parquet")


def test_progress_is_reported_and_throttled(books, tmp_path):
    src = tmp_path / "many.jsonl"
    src.write_text("".join(json.dumps(CHAT | {"id": i}) + "\n" for i in range(2000)))
    calls = []
    import_file(books, src, progress=lambda done, total: calls.append((done, total)))
    size = src.stat().st_size
    assert calls[-1] == (size, size) and len(calls) <= 3


def test_a_hundred_thousand_records(books, tmp_path):
    src = tmp_path / "big.jsonl"
    with open(src, "w") as f:
        for i in range(100_000):
            f.write(json.dumps({"messages": [{"role": "system", "content": "You catalogue books."},
                                             {"role": "user", "content": f"Cite book number {i}"},
                                             {"role": "assistant", "content": f"Book {i}, 19{i % 100:02d}"}]}) + "\n")
        f.write(json.dumps({"messages": [{"role": "user", "content": "Cite book number 7"}]}) + "\n")
    start = time.monotonic()
    report = import_file(books, src)
    assert time.monotonic() - start < 20
    assert report.imported == 100_000 and report.duplicates == 0
    assert [p.where for p in report.problems] == ["line 100001"]
    assert projects.load(books).dataset("big").records == 100_000


def test_cli_kind_dedupe_and_progress(books, tmp_path, capsys):
    src = tmp_path / "pc.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in PC + PC[:1]))
    assert cli(["import", books, str(src), "--kind", "prompt_completion", "--dedupe", "--progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("progress ") and out[-1].startswith("report ")
    report = json.loads(out[-1].removeprefix("report "))
    assert report["imported"] == 3 and report["duplicates"] == 1
    assert report["duplicate_examples"] == [["line 4", "line 1"]]
    assert any("1 duplicate record(s) removed: line 4 repeats line 1" in line for line in out)
