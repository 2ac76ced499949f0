"""Token statistics, seeded splits and dataset mixing: the numbers a person plans a run with."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from workbench import project as projects
from workbench.data.mixing import MixError, mix, parse_mix, proportional_weights, sample_counts
from workbench.data.splits import SplitError, split
from workbench.data.stats import histogram, text_histogram, token_stats


def test_token_stats_and_histogram():
    lengths = [10, 12, 12, 15, 20, 40, 100]
    stats = token_stats(lengths, max_length=32)
    assert (stats["min"], stats["median"], stats["max"], stats["truncated"]) == (10, 15, 100, 2)
    assert stats["p95"] == pytest.approx(82.0)  # numpy's linear interpolation
    bins = stats["histogram"]
    assert sum(b["count"] for b in bins) == len(lengths)
    assert bins[0]["lo"] == 10 and bins[-1]["hi"] == 100
    assert all(a["hi"] + 1 == b["lo"] for a, b in zip(bins, bins[1:]))  # no gap, no overlap
    assert histogram([]) == [] and token_stats([], 8)["records"] == 0
    assert [b["count"] for b in histogram([5, 5, 5])] == [3]
    lines = text_histogram(bins)
    assert len(lines) == len(bins) and lines[0].endswith(" 4") and "#" * 40 in lines[0]


def test_parse_mix():
    assert parse_mix("a=0.7, b=0.3") == {"a": 0.7, "b": 0.3}
    assert parse_mix("proportional") == "proportional"
    for bad in ("a", "a=x", "a=0", "a=1,a=2", ","):
        with pytest.raises(MixError):
            parse_mix(bad)


def test_mix_follows_the_weights_and_keeps_the_total():
    a, b = [("a", i) for i in range(300)], [("b", i) for i in range(100)]
    mixed = mix([a, b], [0.5, 0.5], seed=1)
    assert len(mixed) == 400
    counts = Counter(name for name, _ in mixed)
    assert counts == {"a": 200, "b": 200}
    assert len(set(x for x in mixed if x[0] == "b")) == 100  # b repeated twice, every record used
    assert mixed == mix([a, b], [0.5, 0.5], seed=1) and mixed != mix([a, b], [0.5, 0.5], seed=2)
    assert sample_counts([300, 100], [0.7, 0.3]) == [280, 120]
    assert sample_counts([3, 3, 3], [1, 1, 1]) == [3, 3, 3]
    weights = proportional_weights({"a": 300, "b": 100})
    assert Counter(n for n, _ in mix([a, b], [weights["a"], weights["b"]], seed=0)) == {"a": 300, "b": 100}


def _records(n):
    return [{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(n)]


@pytest.fixture
def pc_project(home, tmp_path):
    from workbench.data.importer import import_file

    projects.create("p")
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _records(50)))
    import_file("p", path)
    return "p"


def _lines(project, name):
    return projects.load(project).dataset_path(name).read_text().splitlines()


def test_split_holds_out_a_seeded_part(pc_project):
    before = _lines(pc_project, "qa")
    result = split(pc_project, "qa", fraction=0.2, seed=7)
    assert (result.train_records, result.eval_records) == (40, 10)
    project = projects.load(pc_project)
    assert [(d.name, d.split, d.records) for d in project.datasets] == [("qa", "train", 40), ("qa-eval", "eval", 10)]
    train, held = _lines(pc_project, "qa"), _lines(pc_project, "qa-eval")
    assert sorted(train + held) == sorted(before) and not set(train) & set(held)
    assert held == [line for line in before if line in held]  # original order kept

    # the same seed on the same data picks the same records
    (projects.load(pc_project).path / "datasets" / "qa.jsonl").write_text("\n".join(before) + "\n")
    project.datasets = [d for d in project.datasets if d.name == "qa"]
    project.save()
    split(pc_project, "qa", count=10, seed=7)
    assert _lines(pc_project, "qa-eval") == held


def test_split_refuses_what_it_cannot_do(pc_project):
    with pytest.raises(SplitError, match="at least one"):
        split(pc_project, "qa", count=50)
    with pytest.raises(SplitError, match="between 0 and 1"):
        split(pc_project, "qa", fraction=1.5)
    split(pc_project, "qa", count=5)
    with pytest.raises(SplitError, match="already has a dataset 'qa-eval'"):
        split(pc_project, "qa", count=5)
    with pytest.raises(SplitError, match="already an eval split"):
        split(pc_project, "qa-eval", count=1)


def test_split_sources_holds_out_before_mixing_and_checks_each_source(tmp_path):
    from workbench.data.errors import DataError
    from workbench.data.prep import split_sources
    from workbench.run.spec import DataSource

    def source(name, texts, weight=1.0):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"prompt": t, "completion": t.upper()}) + "\n" for t in texts))
        return DataSource(dataset=name, file=str(path), kind="prompt_completion", weight=weight)

    a = source("a", [f"a{i}" for i in range(30)])
    b = source("b", [f"b{i}" for i in range(10)], weight=3.0)
    split = split_sources([a, b], [], eval_fraction=0.1, seed=7)
    held = {r["prompt"] for r in split.eval}
    assert len(held) == 4 and len(split.every) == 40
    assert not held & {r["prompt"] for r in split.train}  # no eval record is ever trained on
    assert split == split_sources([a, b], [], eval_fraction=0.1, seed=7)

    named = source("named", ["x0", "x1"])
    kept = split_sources([a], [named], eval_fraction=0.1, seed=7)
    assert [r["prompt"] for r in kept.eval] == ["x0", "x1"] and len(kept.train) == 30

    seen = []
    split_sources([a], [named], 0.1, 7, check=lambda s, records: seen.append((s.dataset, len(records))))
    assert seen == [("a", 30), ("named", 2)]
    with pytest.raises(DataError, match="hold no records"):
        split_sources([source("empty", [])], [], 0.1, 7)
