"""Input limits: what a person can type or point an import at, refused at once with words that name it.

- a symlink to /dev/zero, a pipe, or any file with no line ends is stopped (by type, or at 8 MB a line)
  instead of growing memory until the kernel kills the import;
- an import ends without a temporary file however it ends (SIGTERM, SIGKILL then the next import);
- an import whose name matches a dataset replaces it only with --replace, and the old one stays whole
  until the new one is complete;
- --set values that are not finite or absurdly large, mode=qlora without CUDA, a base model that is no
  model: refused before anything is made;
- two runs started in the same second get two ids.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.faults.conftest import write_jsonl
from workbench import locations
from workbench import project as projects
from workbench.cli.main import main
from workbench.data.importer import import_file

pytestmark = pytest.mark.faults

REPO = Path(__file__).resolve().parents[2]
MEMORY_LIMIT = 1 << 30  # address space of an import child: far above what it needs, far below the machine
RECORD = {"prompt": "Catalogue this book, please: " * 3, "completion": "done"}


def limited_import(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`workbench import ARGS` in a child held to MEMORY_LIMIT and `timeout`: a regression fails the test
    (MemoryError, timeout) instead of eating the machine."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    return subprocess.run([sys.executable, "-m", "workbench.cli", "import", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, env=dict(os.environ), preexec_fn=limit)


def leftovers(project: str) -> list[str]:
    return sorted(p.name for p in (locations.project_dir(project) / "datasets").iterdir())


@pytest.fixture
def books(home) -> str:
    projects.create("books")
    return "books"


def test_a_symlink_to_dev_zero_is_refused_before_it_is_read(books, tmp_path):
    zero = tmp_path / "zero.jsonl"
    zero.symlink_to("/dev/zero")
    done = limited_import(books, str(zero))
    assert done.returncode == 1
    assert done.stderr.strip() == ("workbench: error: zero.jsonl is a character device (it points to /dev/zero), "
                                   "not a data file; give a file or a saved dataset folder")
    assert leftovers(books) == [] and projects.load(books).datasets == []


def test_a_named_pipe_is_refused_before_it_is_read(books, tmp_path):
    pipe = tmp_path / "pipe.csv"
    os.mkfifo(pipe)
    done = limited_import(books, str(pipe), timeout=30)  # opening a pipe with no writer would block
    assert done.returncode == 1 and "pipe.csv is a named pipe, not a data file" in done.stderr


@pytest.mark.parametrize("suffix, where", [(".jsonl", "line 1: longer than 8 MB"),
                                           (".csv", "row 1: a line longer than 8 MB"),
                                           (".tsv", "row 1: a line longer than 8 MB")])
def test_a_file_with_no_line_ends_stops_at_the_line_limit(books, tmp_path, suffix, where):
    flat = tmp_path / f"flat{suffix}"
    with open(flat, "wb") as f:
        f.truncate(4 * MEMORY_LIMIT)  # 4 GiB of zero bytes, sparse: no line end anywhere
    done = limited_import(books, str(flat))
    assert done.returncode == 1, done.stderr
    assert f"{where}, the most one record may take; reading stopped here" in done.stdout
    assert "No usable record" in done.stderr
    assert leftovers(books) == []


def test_a_long_line_stops_the_reading_where_it_is(books, tmp_path):
    src = tmp_path / "long.jsonl"
    good = json.dumps(RECORD) + "\n"
    src.write_text(good * 3 + json.dumps({"prompt": "x" * (9 << 20), "completion": "y"}) + "\n" + good)
    report = import_file(books, src)
    assert report.imported == 3
    assert [(p.line, p.reason.split(",")[0]) for p in report.problems] == [(4, "longer than 8 MB")]


def test_a_csv_cell_longer_than_the_limit_stops_the_reading(books, tmp_path):
    src = tmp_path / "cells.csv"
    cell = '"' + "line of a long cell\n" * ((9 << 20) // 20) + '"'
    src.write_text("prompt,completion\nSay 1.,1\n" + f"{cell},2\n" + "Say 3.,3\n")
    report = import_file(books, src)
    assert report.imported == 1
    assert [(p.where, p.reason.split(",")[0]) for p in report.problems] == [("row 3", "a cell longer than 8 MB")]


def big_file(tmp_path: Path, lines: int = 300_000) -> Path:
    return write_jsonl(tmp_path / "big.jsonl", [RECORD] * lines)


def start_import(*args: str) -> subprocess.Popen:
    """`workbench import ... --progress`, returned once it has read its first records."""
    child = subprocess.Popen([sys.executable, "-m", "workbench.cli", "import", *args, "--progress"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                             env=dict(os.environ))
    for line in child.stdout:
        if line.startswith("progress ") and int(line.split()[1]) > 0:
            return child
    raise AssertionError(f"the import ended before reading: {child.wait()} {child.stderr.read()}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_during_a_replacing_import_keeps_the_old_dataset_and_no_temporary(books, tmp_path, signum):
    (tmp_path / "first").mkdir()
    import_file(books, write_jsonl(tmp_path / "first" / "big.jsonl", [RECORD] * 400))
    child = start_import(books, str(big_file(tmp_path)), "--replace")
    child.send_signal(signum)
    code = child.wait(timeout=30)
    assert code in (-signum, 130)  # killed by the signal itself (SIGINT: the CLI's exit code for Ctrl-C)
    assert leftovers(books) == ["big.jsonl"]
    assert projects.load(books).dataset("big").records == 400
    assert sum(1 for _ in open(projects.load(books).dataset_path("big"))) == 400


def test_the_temporary_of_a_killed_import_goes_with_the_next_import(books, tmp_path):
    child = start_import(books, str(big_file(tmp_path)))
    child.kill()
    child.wait(timeout=30)
    left = leftovers(books)
    assert len(left) == 1 and left[0].startswith(f".big.jsonl.{child.pid}.") and left[0].endswith(".tmp")
    import_file(books, write_jsonl(tmp_path / "small.jsonl", [RECORD]))
    assert leftovers(books) == ["small.jsonl"]


def test_reimporting_a_name_needs_replace_and_names_what_it_would_replace(books, tmp_path):
    src = write_jsonl(tmp_path / "items.jsonl", [dict(RECORD, completion=str(i)) for i in range(400)])
    assert main(["import", books, str(src)]) == 0
    write_jsonl(src, [RECORD])
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "import", books, str(src)], capture_output=True,
                          text=True, timeout=60, cwd=REPO, env=dict(os.environ))
    assert done.returncode == 1
    assert "already has a dataset 'items' (400 record(s))" in done.stderr and "--replace" in done.stderr
    assert projects.load(books).dataset("items").records == 400
    assert main(["import", books, str(src), "--replace"]) == 0
    assert projects.load(books).dataset("items").records == 1


@pytest.fixture
def trainable(books, tmp_path):
    """A project with data to train on; a run a regression lets start is stopped at the end."""
    from workbench.jobs import store

    import_file(books, write_jsonl(tmp_path / "chat.jsonl", [RECORD, dict(RECORD, completion="again")]))
    yield books
    for run in store.list_runs(books):
        if run.alive:
            store.stop(books, run.id)


def runs(project: str) -> list[str]:
    folder = locations.runs_dir(project)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("assignment, message", [
    ("learning_rate=nan", "learning_rate: nan is not a finite number."),
    ("learning_rate=inf", "learning_rate: inf is not a finite number."),
    ("max_steps=1e99", "max_steps: 1e+99 is above the maximum 1e+09."),
    ("max_steps=inf", "max_steps: 'inf' is not a valid int."),
])
def test_train_refuses_values_that_are_not_finite_or_absurd(trainable, capsys, assignment, message):
    assert main(["train", trainable, "--set", assignment]) == 1
    assert capsys.readouterr().err == f"workbench: error: {message}\n"
    assert runs(trainable) == []


def test_train_refuses_qlora_without_cuda_before_a_run_folder_exists(trainable, capsys):
    from workbench.registry.specs import torch_sees_cuda

    if torch_sees_cuda():
        pytest.skip("torch sees a CUDA device here")
    assert main(["train", trainable, "--set", "mode=qlora"]) == 1
    assert "mode=qlora needs a CUDA GPU" in capsys.readouterr().err
    assert runs(trainable) == []


@pytest.mark.parametrize("base, message", [
    ("/etc", "'/etc' is not a model folder (no config.json in it)"),
    ("/etc/hostname", "'/etc/hostname' is a file but not a .gguf model"),
    ("/no/such/model", "Base model '/no/such/model' does not exist"),
])
def test_new_refuses_a_base_model_that_is_no_model(home, capsys, base, message):
    assert main(["new", "p", "--base-model", base]) == 1
    err = capsys.readouterr().err
    assert err == f"workbench: error: {message}: give a Hugging Face model folder (with config.json), " \
                  "a .gguf file or 'default'.\n"
    assert not locations.project_dir("p").exists()


def test_runs_started_in_the_same_second_get_different_ids(home, tmp_path):
    """Four processes reserve 25 run ids each, all at once: every id is a folder of its own."""
    projects.create("race")
    script = textwrap.dedent("""
        import sys, time
        from workbench.jobs.launch import new_run_id
        start = float(sys.argv[1])
        time.sleep(max(0.0, start - time.time()))
        print(" ".join(new_run_id("race", "sft") for _ in range(25)))
    """)
    start = f"{time.time() + 3:.3f}"
    children = [subprocess.Popen([sys.executable, "-c", script, start], stdout=subprocess.PIPE, text=True,
                                 cwd=REPO, env=dict(os.environ)) for _ in range(4)]
    ids = [run_id for child in children for run_id in child.communicate(timeout=60)[0].split()]
    assert len(ids) == 100 and len(set(ids)) == 100
    assert runs("race") == sorted(ids)


def test_a_json_document_too_big_to_parse_whole_is_refused_in_one_line_and_json_lines_still_stream(
        tmp_path, monkeypatch):
    """A .json document is parsed whole (several times its size in memory): past the bound it is refused
    with the way out, while a big .json that is really JSON Lines streams as before."""
    from workbench.data import readers

    monkeypatch.setattr(readers, "MAX_JSON_DOCUMENT_BYTES", 200)
    document = tmp_path / "big.json"
    document.write_text(json.dumps({"data": [{"prompt": f"p{i}", "completion": "c"} for i in range(20)]}, indent=1))
    rows = list(readers.open_source(document).rows())
    assert len(rows) == 1 and rows[0].record is None
    assert "a JSON document of 0 MB: it is parsed whole, and the most this reads whole is 0 MB" in rows[0].problem
    assert "jq -c '.[]'" in rows[0].problem
    lines = tmp_path / "lines.json"
    lines.write_text("".join(json.dumps({"prompt": f"p{i}", "completion": "c"}) + "\n" for i in range(20)))
    rows = list(readers.open_source(lines).rows())
    assert [r.record["prompt"] for r in rows] == [f"p{i}" for i in range(20)]
