"""Events: what the worker writes is what the UI reads, even mid-write."""

from __future__ import annotations

import json

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
