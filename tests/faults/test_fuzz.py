"""Property-based tests (hypothesis) of everything that reads files a person or a crash may have
mangled: every importer reader and record kind, the events reader, the rankings log reader.

The properties: no exception escapes but the ones that mean "this file cannot be read at all"
(UnsupportedFile, RecordProblem for a record), and every fault is located (a bad line or row is
reported at its own number; a bad event line is skipped and counted). Example counts stay small
so the module runs in well under a minute; each test says its own. The examples are the same on
every run (derandomized); `WORKBENCH_FUZZ_SCALE=20` multiplies the counts and draws fresh ones,
for a longer hunt.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from workbench.data import kinds
from workbench.data.readers import open_source
from workbench.data.rows import UnsupportedFile
from workbench.run import events as ev

pytestmark = pytest.mark.faults

SCALE = int(os.environ.get("WORKBENCH_FUZZ_SCALE", "1"))
FAST = settings(max_examples=60 * SCALE, deadline=None, database=None, derandomize=SCALE == 1,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
MORE = settings(FAST, max_examples=150 * SCALE)

# JSON values, and records built from the field names the record kinds look at -------------------------

scalars = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=10)
FIELDS = ("messages", "conversations", "instruction", "input", "output", "system", "prompt", "completion",
          "chosen", "rejected", "completions", "responses", "ranking", "scores", "ties", "label", "text", "answer")
roles = st.sampled_from(["system", "user", "assistant", "human", "gpt", "tool", "", "User"])
messages = st.lists(st.fixed_dictionaries({}, optional={"role": roles, "content": st.text(max_size=10) | json_values,
                                                        "from": roles, "value": st.text(max_size=10)}), max_size=5)
specials = st.sampled_from([math.nan, math.inf, -math.inf])  # what Python's json reads from NaN, Infinity
field_values = st.text(max_size=12) | messages | json_values | st.lists(st.integers(-2, 6), max_size=5) \
    | st.lists(st.floats() | specials, max_size=4) | st.lists(st.text(max_size=6), max_size=5) | specials
texts = st.text(max_size=10)
turns = st.lists(st.fixed_dictionaries({"role": roles, "content": texts}), max_size=4)
numbers = st.floats() | st.integers(-3, 6) | scalars | specials
shapes = st.one_of(  # each record kind's fields, with values that may or may not fit them
    st.fixed_dictionaries({"messages": turns}),
    st.fixed_dictionaries({"conversations": st.lists(st.fixed_dictionaries({"from": roles, "value": texts}),
                                                     max_size=4)}),
    st.fixed_dictionaries({"instruction": texts, "output": texts}, optional={"input": texts | scalars,
                                                                            "system": texts}),
    st.fixed_dictionaries({"prompt": texts | turns, "completion": texts | turns}),
    st.fixed_dictionaries({"prompt": texts | turns, "chosen": texts | turns, "rejected": texts | turns}),
    st.fixed_dictionaries({"prompt": texts, "completions": st.lists(texts, max_size=4)},
                          optional={"ranking": st.lists(st.integers(-1, 5), max_size=4),
                                    "scores": st.lists(numbers, max_size=4),
                                    "ties": st.lists(st.lists(st.integers(-1, 5), max_size=3), max_size=2)}),
    st.fixed_dictionaries({"prompt": texts, "responses": st.lists(
        texts | st.fixed_dictionaries({"text": texts}, optional={"rank": numbers}), max_size=4)}),
    st.fixed_dictionaries({"prompt": texts | turns, "completion": texts | turns, "label": scalars}),
    st.fixed_dictionaries({"text": texts}, optional={"label": scalars}),
    st.fixed_dictionaries({"prompt": texts | turns}, optional={"answer": field_values, "tests": field_values}),
)
records = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), field_values, max_size=6),
    st.builds(lambda shape, extra: {**shape, **extra}, shapes,
              st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=4), field_values, max_size=2)),
)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def rows_of(path: Path) -> list:
    try:
        return list(open_source(path).rows())
    except UnsupportedFile:
        return []  # the whole file refused with its reason: allowed


# JSON Lines --------------------------------------------------------------------------------------------

line_parts = st.one_of(
    st.tuples(st.just("record"), st.dictionaries(st.text(max_size=6), json_values, max_size=4)),
    st.tuples(st.just("value"), json_values.filter(lambda v: not isinstance(v, dict))),
    st.tuples(st.just("bytes"), st.binary(max_size=30).filter(lambda b: b"\n" not in b)),
    st.tuples(st.just("blank"), st.sampled_from([b"", b"  ", b"\t", b"\r"])),
)


@MORE
@given(parts=st.lists(line_parts, max_size=12), crlf=st.booleans(), bom=st.booleans(), end=st.booleans())
def test_jsonl_reports_every_line_at_its_number(tmp_path, parts, crlf, bom, end):
    """150 examples: each non-blank line gives one row at its own number, a record for an object."""
    lines = [json.dumps(value, ensure_ascii=crlf).encode() if what in ("record", "value") else value
             for what, value in parts]
    ending = b"\r\n" if crlf else b"\n"
    data = (b"\xef\xbb\xbf" if bom else b"") + ending.join(lines) + (ending if end and lines else b"")
    rows = rows_of(write(tmp_path / "f.jsonl", data))
    if lines:  # the reader ignores one byte-order mark at the start, whichever part put it there
        lines[0] = ((b"\xef\xbb\xbf" if bom else b"") + lines[0]).removeprefix(b"\xef\xbb\xbf")
    written = [(n, what, value) for n, (line, (what, value)) in enumerate(zip(lines, parts), start=1) if line.strip()]
    assert [r.line for r in rows] == [n for n, _, _ in written]
    for row, (_, what, value) in zip(rows, written):
        assert (row.record is None) != (row.problem is None)
        if what == "record":
            assert row.record == value
        if what == "value":
            assert "expected a JSON object" in row.problem


@MORE
@given(data=st.binary(max_size=400))
@example(data=b"[" * 100_000 + b"]" * 100_000)  # found: nested too deep, json raised RecursionError
def test_any_bytes_as_jsonl_json_csv_or_tsv_raise_nothing_and_locate_every_problem(tmp_path, data):
    """150 examples x 4 formats: arbitrary bytes never raise, and each row is at a line that exists."""
    lines = data.count(b"\n") + 1
    for suffix in (".jsonl", ".json", ".csv", ".tsv"):
        for row in rows_of(write(tmp_path / f"f{suffix}", data)):
            assert (row.record is None) != (row.problem is None)
            assert isinstance(row.record, (dict, type(None)))
            assert 1 <= row.line, (suffix, row)
            if suffix in (".jsonl", ".csv", ".tsv") or row.unit == "line":
                assert row.line <= lines + 1, (suffix, row, lines)


@FAST
@given(values=st.lists(json_values, max_size=8), under=st.sampled_from([None, "data", "records", "rows"]))
def test_a_json_document_gives_one_row_per_record(tmp_path, values, under):
    """60 examples: a list (or a list under a container key) gives record 1..n, each in place."""
    document = values if under is None else {under: values}
    rows = rows_of(write(tmp_path / "f.json", json.dumps(document).encode()))
    assert [r.line for r in rows] == list(range(1, len(values) + 1))
    for row, value in zip(rows, values):
        assert row.unit == "record"
        assert row.record == value if isinstance(value, dict) else "expected a JSON object" in row.problem


cell = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)


@FAST
@given(header=st.lists(st.text(alphabet="abcdefgh_", min_size=1, max_size=6), min_size=1, max_size=4, unique=True),
       body=st.lists(st.lists(cell, min_size=0, max_size=5), max_size=8), delimiter=st.sampled_from([",", "\t"]))
def test_csv_and_tsv_rows_are_numbered_as_in_a_spreadsheet(tmp_path, header, body, delimiter):
    """60 examples: a row of the right width is a record of its non-empty cells; another width is a
    problem at that row; an empty row is skipped; the header is row 1."""
    assume(header == [h.strip() for h in header])
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)  # CR LF ends a row, so a cell's lone CR is quoted
    writer.writerow(header)
    writer.writerows(body)
    suffix = ".tsv" if delimiter == "\t" else ".csv"
    rows = rows_of(write(tmp_path / f"f{suffix}", out.getvalue().encode()))
    expected = [(n, cells) for n, cells in enumerate(body, start=2) if any(c.strip() for c in cells)]
    assert [r.line for r in rows] == [n for n, _ in expected]
    for row, (_, cells) in zip(rows, expected):
        if len(cells) != len(header):
            assert "cells, but the header row names" in row.problem
        else:
            assert row.record is not None and set(row.record) == {h for h, c in zip(header, cells) if c != ""}


@FAST
@given(table=st.lists(st.fixed_dictionaries({"prompt": st.none() | st.text(max_size=8),
                                              "completion": st.none() | st.text(max_size=8),
                                              "n": st.none() | st.integers(-5, 5)}), max_size=6))
def test_parquet_rows_come_back_in_order_without_nulls(tmp_path, table):
    """60 examples: each row is record i; a null is an absent field, except an answer column's."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    schema = pa.schema([("prompt", pa.string()), ("completion", pa.string()), ("n", pa.int64())])
    pq.write_table(pa.Table.from_pylist(table, schema=schema), tmp_path / "f.parquet")
    rows = rows_of(tmp_path / "f.parquet")
    assert [r.line for r in rows] == list(range(1, len(table) + 1))
    for row, record in zip(rows, table):
        assert row.record == {k: v for k, v in record.items() if v is not None or k == "completion"}


@FAST
@given(data=st.binary(max_size=200))
def test_a_damaged_parquet_file_is_refused_with_its_reason(tmp_path, data):
    """60 examples: bytes named .parquet are refused as a whole (UnsupportedFile), nothing else."""
    pytest.importorskip("pyarrow")
    with pytest.raises(UnsupportedFile, match="not a readable Parquet file"):
        list(open_source(write(tmp_path / "f.parquet", data)).rows())


# record kinds ------------------------------------------------------------------------------------------


@settings(MORE, max_examples=400 * SCALE)
@given(record=records, forced=st.none() | st.sampled_from(kinds.KINDS))
@example(record={"prompt": "p", "answer": math.nan}, forced=None)  # found: NaN was stored as is
def test_every_record_is_a_kind_or_a_worded_problem_and_normalised_records_stay_put(record, forced):
    """400 examples: detect and normalise raise only RecordProblem; what they keep is plain JSON,
    and normalising it again (as re-importing a project's own dataset does) changes nothing."""
    try:
        kind = forced or kinds.detect(record)
        normal = kinds.normalise(record, kind)
    except kinds.RecordProblem as exc:
        assert str(exc)
        return
    assert json.loads(json.dumps(normal)) == normal
    assert kinds.normalise(normal, kind) == normal
    if forced is None:
        assert kinds.detect(normal) == kind


def test_a_score_or_field_that_is_nan_infinity_or_too_deep_is_refused_by_name():
    """What the fuzzer found: a NaN score ranked completions at random, a NaN field was stored in a
    file no JSON reader but Python's takes, and a field nested ~1000 deep was stored where a reader
    with a deeper stack (a UI thread) could not read it back."""
    for record, said in (({"prompt": "p", "completions": ["a", "b"], "scores": [math.nan, 1.0]}, "'scores'"),
                         ({"prompt": "p", "responses": [{"text": "a", "rank": math.inf}, {"text": "b", "rank": 1}]},
                          "'rank'"),
                         ({"prompt": "p", "answer": [1.0, -math.inf]}, "field 'answer' holds NaN or Infinity"),
                         (json.loads(nested(900)), "field 'answer' is nested more than 64")):
        with pytest.raises(kinds.RecordProblem, match=said):
            kinds.normalise(record, kinds.detect(record))


# the importer, end to end ------------------------------------------------------------------------------


def nested(depth: int, open_: str = "[", close: str = "]") -> bytes:
    """A record whose `answer` holds lists inside lists `depth` deep (found: past ~1000 a reader raised)."""
    return b'{"prompt": "p", "answer": ' + (open_ * depth + close * depth).encode() + b"}"


deep_lines = st.builds(nested, st.integers(1, 3000) | st.integers(900, 1100))


@FAST
@given(lines=st.lists(st.one_of(records.map(lambda r: json.dumps(r).encode()), deep_lines,
                                st.binary(max_size=20).filter(lambda b: b"\n" not in b)), min_size=1, max_size=10))
@example(lines=[nested(100_000), nested(990), nested(950)])
def test_an_import_keeps_the_good_records_and_names_the_line_of_every_bad_one(home_once, tmp_path, lines):
    """60 examples: every non-blank line is imported or reported at its number, never both."""
    from workbench.data.importer import import_file, read_records

    source = write(tmp_path / "in.jsonl", b"\n".join(lines) + b"\n")
    report = import_file("fuzz", source, name="fuzz", replace=True)
    nonblank = [n for n, line in enumerate(lines, start=1) if line.strip() and not (n == 1 and line == b"\xef\xbb\xbf")]
    problems = sorted(p.line for p in report.problems)
    assert len(problems) + report.imported == len(nonblank)
    assert set(problems) <= set(nonblank)
    if report.imported:
        assert len(read_records(home_once / "fuzz" / "datasets" / "fuzz.jsonl")) == report.imported


@pytest.fixture
def home_once(tmp_path, monkeypatch):
    from workbench import project

    path = tmp_path / "projects"
    path.mkdir()
    monkeypatch.setenv("WORKBENCH_HOME", str(path))
    project.create("fuzz")
    return path


# the events reader -------------------------------------------------------------------------------------

words = st.text(max_size=10)
finite = st.floats(allow_nan=False, allow_infinity=False, width=32)
valid_events = st.one_of(
    st.builds(ev.Started, pid=st.integers(0, 2**31), method=words, resumed_from=st.none() | words, time=finite),
    st.builds(ev.Status, message=words, progress=st.none() | finite, time=finite),
    st.builds(ev.Log, step=st.integers(0, 10**6), total_steps=st.integers(0, 10**6), loss=st.none() | finite,
              time=finite),
    st.builds(ev.Checkpoint, step=st.integers(0, 10**6), path=words, time=finite),
    st.builds(ev.Error, kind=words, message=words, time=finite),
    st.builds(ev.Finished, reason=st.sampled_from(["completed", "stopped", "failed"]), step=st.integers(0, 99),
              time=finite),
)
wrong_values = st.sampled_from(["abc", [], {}, True]) | st.lists(st.integers(), min_size=1, max_size=2)
badly_typed = st.one_of(
    st.builds(lambda v: {"type": "log", "step": v}, wrong_values),
    st.builds(lambda v: {"type": "status", "message": v}, wrong_values.filter(lambda v: not isinstance(v, str))),
    st.builds(lambda v: {"type": "finished", "step": v}, wrong_values),
    st.builds(lambda v: {"type": v, "step": 1}, st.none() | st.integers() | st.lists(st.text(), max_size=1)),
)


def event_line(event: ev.Event) -> bytes:
    return json.dumps(event.to_dict()).encode()


def assert_typed(events: list[ev.Event]) -> None:
    """Each event's fields hold their declared types: it survives a round trip through its dict."""
    for event in events:
        assert ev.from_dict(json.loads(json.dumps(event.to_dict()))) == event


@MORE
@given(data=st.binary(max_size=600))
@example(data=b'{"type": "status", "message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n")
def test_any_bytes_as_an_events_file_give_typed_events_only(tmp_path, data):
    """150 examples: arbitrary bytes never raise; whatever comes out is a well-typed event."""
    events = ev.read_all(write(tmp_path / "events.jsonl", data))
    assert_typed(events)


@MORE
@given(lines=st.lists(st.one_of(valid_events.map(lambda e: ("event", e)),
                                badly_typed.map(lambda d: ("bad", json.dumps(d).encode())),
                                json_values.map(lambda v: ("bad", json.dumps(v).encode())),
                                st.binary(max_size=30).filter(lambda b: b"\n" not in b and b'{"type": "' not in b)
                                .map(lambda b: ("bad", b))), max_size=12))
def test_the_events_reader_keeps_every_event_and_counts_every_bad_line(tmp_path, lines):
    """150 examples: the good events come back in order; each bad non-blank line is skipped and counted."""
    path = write(tmp_path / "events.jsonl",
                 b"".join((event_line(v) if what == "event" else v) + b"\n" for what, v in lines))
    tail = ev.EventTail(path)
    events = tail.read_new()
    good = [v for what, v in lines if what == "event"]
    bad = [v for what, v in lines if what == "bad" and v.strip()]
    unknown_types = [v for v in bad if _unknown_type(v)]  # a newer writer's event: skipped, not counted
    assert events == good
    assert tail.skipped == len(bad) - len(unknown_types)


def _unknown_type(line: bytes) -> bool:
    try:
        data = json.loads(line)
    except ValueError:
        return False
    return isinstance(data, dict) and isinstance(data.get("type"), str) and data["type"] not in ev.EVENT_TYPES


@MORE
@given(events=st.lists(valid_events, max_size=8), cuts=st.lists(st.integers(0, 10**4), max_size=4))
def test_reading_a_growing_events_file_in_pieces_gives_the_same_events(tmp_path, events, cuts):
    """150 examples: a tail that reads as the writer appends (cut anywhere) ends with read_all's events."""
    data = b"".join(event_line(e) + b"\n" for e in events)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"")
    tail = ev.EventTail(path)
    seen = []
    written = 0
    for cut in sorted({min(c, len(data)) for c in cuts} | {len(data)}):
        with open(path, "ab") as f:
            f.write(data[written:cut])
        written = cut
        seen += tail.read_new()
    assert seen == events == ev.read_all(path)
    assert tail.skipped == 0


# the rankings log --------------------------------------------------------------------------------------


def _good_ranking(n_candidates: int, order: list[int], skipped: bool, ab: bool) -> dict:
    from workbench.ranking import rankings

    n = 2 if ab else n_candidates
    ranking = [i for i in dict.fromkeys(order) if i < n]
    sources = ["a", "b"] if ab else ["m"] * n
    return rankings.make_record("p", [{"text": f"t{i}", "source": sources[i]} for i in range(n)], ranking,
                                skipped=skipped, session="s", index=0, round=0)


good_rankings = st.builds(_good_ranking, st.integers(2, 5), st.lists(st.integers(0, 4), max_size=5), st.booleans(),
                          st.booleans())
mangled_rankings = st.builds(lambda r, key, value: {**r, key: value}, good_rankings,
                             st.sampled_from(["candidates", "ranking", "tied", "skipped", "index", "prompt", "by",
                                              "session", "round"]), field_values)


@MORE
@example(lines=[nested(100_000)])
@example(lines=[json.dumps({**_good_ranking(2, [0, 1], False, False), broken: value}).encode()
                for broken, value in (("candidates", None), ("ranking", [0, 6]), ("ranking", None),
                                      ("candidates", ["a", "b"]), ("tied", "0"))])  # found: each one raised
@given(lines=st.lists(st.one_of(good_rankings.map(lambda r: json.dumps(r).encode()),
                                mangled_rankings.map(lambda r: json.dumps(r).encode()),
                                json_values.map(lambda v: json.dumps(v).encode()),
                                st.binary(max_size=20).filter(lambda b: b"\n" not in b)), max_size=10))
def test_the_rankings_log_reader_and_what_reads_it_never_raise(home_once, lines):
    """150 examples: a log with mangled lines gives its well-formed rankings, and the session's
    figures, win rates and the rankings dataset come from them without an exception."""
    from workbench import locations
    from workbench.ranking import rankings

    path = locations.rankings_file("fuzz")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\n".join(lines) + b"\n")
    records, problems = rankings.read_log("fuzz")
    assert records == rankings.read("fuzz") and all(isinstance(r, dict) for r in records)
    nonblank = [n for n, line in enumerate(lines, start=1) if line.strip()]
    assert len(records) + len(problems) == len(nonblank)  # each line is a ranking or a located problem
    assert {int(p.split(":")[0].removeprefix("line ")) for p in problems} <= set(nonblank)
    rankings.done_indices("fuzz", "s")
    rankings.ab_win_rates(records)
    for record in records:
        rankings.to_pairs(record)
        rankings.ranked_record(record)
    try:
        pairs = rankings.rankings_as_dataset("fuzz")
    except rankings.RankingError:
        return
    assert pairs > 0 and not math.isnan(pairs)
