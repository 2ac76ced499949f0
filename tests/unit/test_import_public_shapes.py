"""The shapes the big public sets come in: HH-RLHF dialogue pairs, embedding pairs and scored pairs, and a
saved DatasetDict of train and test splits; each fault located by its line, row or split."""

from __future__ import annotations

import json

import pytest

from workbench import project as projects
from workbench.data import kinds
from workbench.data.importer import DatasetExists, import_file, read_records


@pytest.fixture
def hub(home):
    projects.create("hub")
    return "hub"


def stored(name: str) -> list[dict]:
    return read_records(projects.load("hub").dataset_path(name))


def write(path, lines: list) -> object:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines),
                    encoding="utf-8")
    return path


def hh(*turns: str, chosen: str, rejected: str) -> dict:
    """An HH-RLHF record: the dialogue (Human first, alternating) then each answer, whole dialogues both."""
    head = "".join(f"\n\n{'Human' if i % 2 == 0 else 'Assistant'}: {t}" for i, t in enumerate(turns))
    return {"chosen": f"{head}\n\nAssistant: {chosen}", "rejected": f"{head}\n\nAssistant: {rejected}"}


def U(text):
    return {"role": "user", "content": text}


def A(text):
    return {"role": "assistant", "content": text}


def test_hh_rlhf_dialogues_become_preference_records_with_the_shared_turns_as_prompt(hub, tmp_path):
    lines = [
        hh("How do I boil an egg?", chosen="Put it in boiling water for 8 minutes.", rejected="Why would you?"),
        hh("Name a colour.", "Blue.", "Another one?", chosen="Green.", rejected="No."),
        {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!"},
        {"chosen": "Just some text", "rejected": "Just other text"},
        {"chosen": "\n\nHuman: A\n\nAssistant: x\n\nHuman: B\n\nAssistant: y",
         "rejected": "\n\nHuman: A\n\nAssistant: z\n\nHuman: B\n\nAssistant: y"},
        {"chosen": "\n\nHuman: Hi\n\nAssistant:", "rejected": "\n\nHuman: Hi\n\nAssistant: Hello"},
        "{\"chosen\": \"\\n\\nHuman: cut",
    ]
    report = import_file(hub, write(tmp_path / "hh.jsonl", lines))
    assert report.imported == 2 and report.kinds == {"preference": 2}
    assert stored("hh") == [
        {"prompt": [U("How do I boil an egg?")], "chosen": [A("Put it in boiling water for 8 minutes.")],
         "rejected": [A("Why would you?")]},
        {"prompt": [U("Name a colour."), A("Blue."), U("Another one?")], "chosen": [A("Green.")],
         "rejected": [A("No.")]},
    ]
    problems = {p.where: p.reason for p in report.problems}
    assert problems["line 3"].startswith("chosen and rejected are the same")
    assert "not dialogues that share their turns" in problems["line 4"]
    assert problems["line 5"].startswith("chosen and rejected differ before their last assistant turn")
    assert problems["line 6"] == "the chosen answer after the last 'Assistant:' is empty"
    assert problems["line 7"].startswith("not valid JSON")
    canonical = stored("hh")[1]
    assert kinds.normalise(canonical, kinds.detect(canonical)) == canonical  # read back as stored


def test_pairs_triplets_and_scored_pairs_under_their_public_names(hub, tmp_path):
    lines = [
        {"anchor": "capital of France", "positive": "Paris is the capital of France."},
        {"query": "tallest mountain", "pos": "Everest is the tallest.", "neg": "The Nile is long."},
        {"anchor": "q", "positive": "same", "negative": "same"},
        {"anchor": "q", "positive": ""},
        {"anchor": "q", "positive": ["a list"]},
    ]
    report = import_file(hub, write(tmp_path / "pairs.jsonl", lines))
    assert report.kinds == {"pair": 2} and projects.load(hub).dataset("pairs").kind == "pair"
    assert stored("pairs") == [
        {"anchor": "capital of France", "positive": "Paris is the capital of France."},
        {"anchor": "tallest mountain", "positive": "Everest is the tallest.", "negative": "The Nile is long."},
    ]
    assert {p.where: p.reason for p in report.problems} == {
        "line 3": "'positive' and 'negative' are the same text; a triplet needs two different ones",
        "line 4": "field 'positive' is empty",
        "line 5": "field 'positive' should be text, found list"}

    (tmp_path / "sts.csv").write_text("sentence1,sentence2,score\n"
                                      "A man plays a guitar.,A person plays music.,4.2\n"
                                      "A cat sleeps.,Stocks fell today.,0\n"
                                      "A dog runs.,A dog is running.,high\n"
                                      "Only one side,,3\n")
    report = import_file(hub, tmp_path / "sts.csv")
    assert stored("sts") == [{"a": "A man plays a guitar.", "b": "A person plays music.", "score": 4.2},
                             {"a": "A cat sleeps.", "b": "Stocks fell today.", "score": 0.0}]
    assert report.kinds == {"scored_pair": 2}
    assert [p.where for p in report.problems] == ["row 4", "row 5"]
    assert report.problems[0].reason == "'score' should be a number (how alike the two texts are), found 'high'"


def test_a_dataset_dict_becomes_one_dataset_per_split_test_and_validation_held_out(hub, tmp_path):
    from datasets import Dataset, DatasetDict

    pc = [{"prompt": f"Cite book {i}", "completion": f"Title {i}"} for i in range(6)]
    DatasetDict({
        "train": Dataset.from_list(pc[:4]),
        "validation": Dataset.from_list([pc[4], {"prompt": "x", "completion": " "}]),
        "test": Dataset.from_list([pc[5], pc[0]]),  # pc[0] is also a training record
    }).save_to_disk(str(tmp_path / "books"))
    calls = []
    report = import_file(hub, tmp_path / "books", progress=lambda done, total: calls.append((done, total)))

    entries = {d.name: (d.split, d.records, d.kind) for d in projects.load(hub).datasets}
    assert entries == {"books-train": ("train", 4, "prompt_completion"),
                       "books-validation": ("eval", 1, "prompt_completion"),
                       "books-test": ("eval", 2, "prompt_completion")}
    assert stored("books-test") == [pc[5], pc[0]]
    assert report.imported == 7 and report.dataset == "books-train, books-validation, books-test"
    assert [p.where for p in report.problems] == ["row 2 of split 'validation'"]
    text = str(report)
    assert "split 'validation' -> dataset 'books-validation' (eval): 1 record(s)" in text
    assert "1 record(s) of eval split 'test' are also in a training split" in text
    assert calls[-1] == (8, 8)  # progress runs over all splits once

    with pytest.raises(DatasetExists, match="books-train"):  # refused before any split is replaced
        import_file(hub, tmp_path / "books", name="books")
    assert import_file(hub, tmp_path / "books", replace=True).imported == 7


def test_a_single_split_folder_keeps_the_chosen_split(hub, tmp_path):
    from datasets import Dataset, DatasetDict

    rows = [{"anchor": f"q{i}", "positive": f"p{i}"} for i in range(3)]
    DatasetDict({"test": Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "only"))
    report = import_file(hub, tmp_path / "only", split="eval")
    assert report.imported == 3 and projects.load(hub).dataset("only").split == "eval"
