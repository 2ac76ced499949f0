"""The data tools end to end: `workbench data` in a child process, preflight in the worker, mixing."""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e.conftest import cli, events, of_type, write_jsonl
from workbench import locations
from workbench.cli.main import main
from workbench.data.importer import import_file
from workbench.files import read_toml
from workbench.jobs import store
from workbench.run import events as ev

pytestmark = pytest.mark.e2e


def test_a_run_on_data_that_fails_preflight_ends_with_bad_data(tiny_project, capsys):
    assert main(["train", tiny_project, "--wait", "--set", "max_length=16"]) == 1
    run = store.list_runs(tiny_project)[0]
    got = events(tiny_project, run.id)
    error = of_type(got, ev.Error)[0]
    assert error.kind == "bad_data"
    assert error.message.startswith("No record carries loss after masking and truncation to max_length=16")
    assert not of_type(got, ev.TrainBegin)  # refused before the trainer was built
    assert "No record carries loss" in capsys.readouterr().err


def test_the_memory_check_comes_before_training(lora_run):
    """The tiny model's batch needs a sliver of the free memory: the estimate says so and the probe is skipped."""
    project, run_id, _ = lora_run
    got = events(project, run_id)
    probes = [e for e in of_type(got, ev.Status) if "memory" in e.message and "longest batch" in e.message]
    assert len(probes) == 1
    assert re.fullmatch(r"no memory probe: the longest batch \(\d+ tokens\) needs about \d+\.\d GiB of "
                        r"\d+\.\d GiB available RAM", probes[0].message)
    assert got.index(probes[0]) < got.index(of_type(got, ev.TrainBegin)[0])


def test_a_mixed_run_records_its_weights(tiny_project, tmp_path, capsys):
    extra = [{"prompt": f"Say {i}.", "completion": f"{i}"} for i in range(10)]
    import_file(tiny_project, write_jsonl(tmp_path / "say.jsonl", extra))
    assert main(["train", tiny_project, "--mix", "chat=3,say=1", "--wait", "--set", "max_steps=1",
                 "--set", "eval_fraction=0"]) == 0
    run = store.list_runs(tiny_project)[0]
    spec = read_toml(locations.run_dir(tiny_project, run.id) / "job.toml")
    assert [(s["dataset"], s["weight"]) for s in spec["train"]] == [("chat", 3.0), ("say", 1.0)]
    begin = of_type(events(tiny_project, run.id), ev.TrainBegin)[0]
    assert begin.train_records == 50  # the mix keeps the total: 37.5 chat + 12.5 say records


def test_data_cli_report_and_show(tiny_project):
    result = cli("data", tiny_project, "--json", "--max-length", "46")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["project"] == tiny_project and report["kinds"] == {"chat": 40}
    assert report["datasets"][0] | {"tokens": None} == {"name": "chat", "kind": "chat", "records": 40,
                                                         "split": "train", "tokens": None}
    tokens = report["tokens"]
    assert (tokens["min"], tokens["max"], tokens["max_length"]) == (45, 48, 46)
    assert tokens["truncated"] == sum(b["count"] for b in tokens["histogram"] if b["lo"] > 46) == 30
    assert "would not be trained in 30 of 40 records" in report["preflight"]["errors"][0]

    shown = json.loads(cli("data", tiny_project, "--show", "3", "--json").stdout)
    assert (shown["index"], shown["dataset"], shown["kind"], shown["truncated"]) == (3, "chat", "chat", False)
    assert [s["loss"] for s in shown["segments"]] == [False, True]
    assert shown["segments"][1]["text"] == "3 plus one is 4.<|im_end|>\n"
    assert shown["loss_tokens"] < shown["tokens"] == 45

    text = cli("data", tiny_project, "--show", "3").stdout
    assert "\u00ab3 plus one is 4.<|im_end|>\n\u00bb" in text and "9 carry loss" in text
    report_text = cli("data", tiny_project).stdout
    assert "Kinds: 40 chat" in report_text and "Preflight: ready to train" in report_text
    assert cli("data", tiny_project, "--show", "99").returncode == 1
