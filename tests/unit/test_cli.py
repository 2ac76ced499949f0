"""The headless CLI: exit codes, one-line errors, help for every subcommand."""

from __future__ import annotations

import json

import pytest

from workbench import project as projects
from workbench.cli.main import build_parser, main

SUBCOMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]


def test_every_expected_subcommand_exists():
    assert {"new", "list", "import", "train", "runs", "stop", "resume", "export", "eval", "home"} <= set(SUBCOMMANDS)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_of_every_subcommand_exits_0(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert f"usage: workbench {command}" in capsys.readouterr().out


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("workbench: error: ") and err.count("\n") == 1, err
    return err


def test_new_list_home(home, capsys):
    assert main(["new", "books", "--description", "Cataloguing"]) == 0
    assert "Created project 'books'" in capsys.readouterr().out
    assert projects.load("books").description == "Cataloguing"
    assert main(["list"]) == 0
    assert capsys.readouterr().out.startswith("books\t0 dataset(s)\tdefault")
    assert main(["home"]) == 0
    assert capsys.readouterr().out.strip() == str(home)


@pytest.mark.parametrize("argv, message", [
    (["new", "bad name"], "no spaces"),
    (["new", "a/b"], "path separator"),
    (["new", "m", "--base-model", "/no/such/model"], "does not exist"),
    (["runs", "ghost"], "No project named 'ghost'"),
    (["train", "ghost"], "No project named 'ghost'"),
    (["eval", "ghost"], "No project named 'ghost'"),
    (["export", "ghost", "r1", "--format", "lora"], None),
])
def test_errors_exit_1_with_one_line_on_stderr(home, capsys, argv, message):
    assert main(argv) == 1
    err = one_line_error(capsys)
    if message:
        assert message in err


def test_runs_of_a_project_without_runs(home, capsys):
    main(["new", "books"])
    capsys.readouterr()
    assert main(["runs", "books"]) == 0
    assert capsys.readouterr().out.strip() == "No runs yet."


def test_train_without_data_and_with_bad_settings(home, capsys, tmp_path):
    main(["new", "books"])
    capsys.readouterr()
    assert main(["train", "books"]) == 1
    assert "no training data yet" in one_line_error(capsys)
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"prompt": "a", "completion": "b"}) + "\n")
    main(["import", "books", str(data)])
    capsys.readouterr()
    assert main(["train", "books", "--set", "learning_rate=fast"]) == 1
    assert "learning_rate: 'fast' is not a valid float" in one_line_error(capsys)
    assert main(["train", "books", "--set", "epochs"]) == 1
    assert "is not key=value" in one_line_error(capsys)
    assert main(["train", "books", "--method", "nope"]) == 1
    assert "Unknown method 'nope'" in one_line_error(capsys)
    assert not (home / "books" / "runs").exists() or list((home / "books" / "runs").iterdir()) == []


def test_eval_without_an_eval_split_says_how_to_add_one(home, capsys, tmp_path):
    main(["new", "books"])
    capsys.readouterr()
    assert main(["eval", "books"]) == 1
    assert "--split eval" in one_line_error(capsys)


def test_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["export", "p", "r", "--format", "gguf-nope"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
