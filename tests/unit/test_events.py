"""Events: what the worker writes is what the UI reads, even mid-write."""

from __future__ import annotations

import json

import pytest

from workbench.run import events as ev


def test_writer_reader_round_trip(tmp_path):
    path = tmp_path / "events.jsonl"
    writer = ev.EventWriter(path)
    sent = [ev.Started(pid=12, method="sft"), ev.TrainBegin(total_steps=10, trainable_params=5),
            ev.Log(step=1, total_steps=10, loss=2.5, lr=1e-4, metrics={"entropy": 1.5}),
            ev.Eval(step=1, loss=2.0), ev.Checkpoint(step=1, path="c"), ev.Sample(step=1, prompt="p", completion="c"),
            ev.Error(message="boom", kind="bad_data"), ev.Finished(reason="stopped", step=1)]
    for event in sent:
        writer.emit(event)
    writer.close()
    got = ev.read_all(path)
    assert got == sent
    assert [type(e) for e in got] == [type(e) for e in sent]
    assert json.loads(path.read_text().splitlines()[2])["type"] == "log"


def test_numpy_like_values_are_written_as_numbers(tmp_path):
    class Scalar:  # what a torch or numpy scalar looks like to json
        def item(self):
            return 0.5

    path = tmp_path / "events.jsonl"
    writer = ev.EventWriter(path)
    writer.emit(ev.Log(step=1, loss=Scalar()))  # type: ignore[arg-type]
    writer.close()
    assert ev.read_all(path)[0].loss == 0.5


def test_half_written_last_line_is_read_once_completed(tmp_path):
    path = tmp_path / "events.jsonl"
    first = json.dumps(ev.Log(step=1, loss=1.0).to_dict())
    second = json.dumps(ev.Log(step=2, loss=0.5).to_dict())
    path.write_text(first + "\n" + second[:17])
    tail = ev.EventTail(path)
    assert [e.step for e in tail.read_new()] == [1]
    assert tail.read_new() == []  # still incomplete: nothing, no error
    with open(path, "a") as f:
        f.write(second[17:] + "\n")
    assert [e.step for e in tail.read_new()] == [2]
    assert tail.read_new() == []  # each event is read exactly once


def test_unknown_types_and_junk_lines_are_skipped(tmp_path):
    path = tmp_path / "events.jsonl"
    lines = [
        json.dumps({"type": "from_the_future", "x": 1}),
        "not json at all",
        "[1, 2]",
        json.dumps({"type": "log", "step": 3, "loss": 0.1, "new_field": "ignored"}),
        "",
    ]
    path.write_text("\n".join(lines) + "\n")
    got = ev.read_all(path)
    assert len(got) == 1 and isinstance(got[0], ev.Log) and got[0].step == 3


def test_missing_file_reads_as_no_events(tmp_path):
    assert ev.read_all(tmp_path / "nope.jsonl") == []


def test_a_cut_last_line_stays_alone_and_the_next_event_is_read(tmp_path):
    path = tmp_path / "events.jsonl"
    writer = ev.EventWriter(path)
    writer.emit(ev.Started(pid=1, method="sft"))
    writer.close()
    cut = json.dumps(ev.Log(step=7, loss=1.0).to_dict())[:25]
    with open(path, "a") as f:  # a worker killed in the middle of a line
        f.write(cut)
    tail = ev.EventTail(path)
    assert [e.type for e in tail.read_new()] == ["started"]

    writer = ev.EventWriter(path)  # the resumed worker
    writer.emit(ev.Started(pid=2, method="sft", resumed_from="checkpoint-5"))
    writer.close()
    got = tail.read_new()
    assert [(e.type, e.pid) for e in got] == [("started", 2)] and got[0].resumed_from == "checkpoint-5"
    assert tail.skipped == 1  # the cut line, counted
    assert path.read_text().splitlines()[1] == cut


def test_the_writer_adds_no_blank_line_to_a_whole_or_empty_file(tmp_path):
    path = tmp_path / "events.jsonl"
    for _ in range(2):
        writer = ev.EventWriter(path)
        writer.emit(ev.Status(message="hello"))
        writer.close()
    assert path.read_text().count("\n") == 2 and "\n\n" not in path.read_text()


def test_an_event_glued_to_a_cut_line_is_recovered(tmp_path):
    """Files written before the writer began a new line after a cut hold such lines."""
    path = tmp_path / "events.jsonl"
    started = json.dumps(ev.Started(pid=3, method="sft", resumed_from="checkpoint-10").to_dict())
    path.write_text('{"type": "log", "step": 9, "lo' + started + "\n")
    tail = ev.EventTail(path)
    got = tail.read_new()
    assert [(e.type, e.pid, e.resumed_from) for e in got] == [("started", 3, "checkpoint-10")]
    assert tail.skipped == 1


@pytest.mark.parametrize("line", [
    {"type": "log", "step": "abc"},
    {"type": "log", "step": 1.5},
    {"type": "log", "step": True},
    {"type": "log", "step": None},
    {"type": "log", "loss": "0.5"},
    {"type": "log", "metrics": {"entropy": "high"}},
    {"type": "log", "metrics": [1, 2]},
    {"type": "eval", "loss": [0.5]},
    {"type": "started", "pid": 1, "resumed_from": 5},
    {"type": "status", "message": None},
    {"type": "status", "message": "m", "progress": "half"},
    {"type": "artifact", "passed": "yes"},
    {"type": "finished", "reason": 0},
    {"type": "log", "time": "yesterday"},
    {"type": "log", "loss": 10 ** 400},  # no float holds it
    {"type": 5},
    {"step": 1},
])
def test_a_value_of_the_wrong_type_makes_the_line_unreadable(tmp_path, line):
    path = tmp_path / "events.jsonl"
    good = ev.Log(step=2, loss=0.25)
    path.write_text(json.dumps(line) + "\n" + json.dumps(good.to_dict()) + "\n")
    tail = ev.EventTail(path)
    assert tail.read_new() == [good]
    assert tail.skipped == 1


def test_ints_are_read_as_floats_and_missing_fields_take_their_defaults(tmp_path):
    path = tmp_path / "events.jsonl"
    lines = [{"type": "log", "step": 3, "epoch": 1, "loss": 2, "metrics": {"kl": 0}, "time": 100},
             {"type": "status", "message": "m", "progress": 1},
             {"type": "log", "step": 4, "loss": float("nan")}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    tail = ev.EventTail(path)
    first, status, nan = tail.read_new()
    assert (first.epoch, first.loss, first.metrics, first.time) == (1.0, 2.0, {"kl": 0.0}, 100.0)
    assert isinstance(first.loss, float) and isinstance(first.metrics["kl"], float)
    assert status.progress == 1.0 and first.total_steps == 0 and first.lr is None
    assert nan.loss != nan.loss  # a diverging run's NaN is kept
    assert tail.skipped == 0


def test_every_event_field_is_a_type_the_reader_checks():
    for cls in ev.EVENT_TYPES.values():
        event = cls()
        assert ev.from_dict(event.to_dict()) == event  # defaults, None among them, fit their fields


def test_a_jsonl_tail_counts_the_lines_that_hold_no_object(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"a": 1}\nnot json\n[1]\n\n{"b": 2}\n{"c": ')
    tail = ev.JsonlTail(path)
    assert tail.read_dicts() == [{"a": 1}, {"b": 2}]
    assert tail.skipped == 2  # the blank line is no fault, the unfinished last one not yet read


def test_a_line_nested_too_deep_for_the_parser_is_skipped(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("[" * 100_000 + "\n" + json.dumps(ev.Status(message="after").to_dict()) + "\n")
    tail = ev.EventTail(path)
    assert [e.message for e in tail.read_new()] == ["after"] and tail.skipped == 1
