"""Hostile files and code: what a model wrote, what a dataset carries, what a shared project holds.

- code under test in the reward sandbox reads neither the person's keys nor the parent's secrets;
- a person's reward file is their own code: it runs unsandboxed in the scoring process, and what it
  hands to the sandbox reaches no secret either;
- a dataset's terminal escape sequences reach no screen of the app, nor the CLI's terminal output;
- a project folder whose files or folders link outside the projects home is refused.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import pytest
from textual.app import App
from textual.widgets import DataTable, Input, Static

from tests.conftest import write_jsonl
from workbench.rewards import sandbox
from workbench.terminal import for_stream, printable

pytestmark = pytest.mark.faults

SECRETS = {"WORKBENCH_TEST_SECRET": "wb-secret-0451", "AWS_SECRET_ACCESS_KEY": "aws-secret-0451",
           "HF_TOKEN": "hf_secret0451"}
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nfake-key-0451\n-----END OPENSSH PRIVATE KEY-----\n"


@pytest.fixture
def fake_home(tmp_path, monkeypatch):
    """A HOME with an SSH key and a Hugging Face token, and secrets in the environment; sandbox
    folders go under this test's tmp, apart from HOME."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(KEY)
    (home / ".cache" / "huggingface").mkdir(parents=True)
    (home / ".cache" / "huggingface" / "token").write_text(SECRETS["HF_TOKEN"])
    monkeypatch.setenv("HOME", str(home))
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return home


def leaked(outcome: sandbox.Outcome) -> list[str]:
    """The secrets found in what the sandboxed code could print or raise."""
    said = outcome.detail
    return [s for s in [*SECRETS.values(), "fake-key-0451"] if s in said]


# (a) code under test ---------------------------------------------------------------------------------


@pytest.fixture(params=["namespaces", "audit hook only"])
def layers(request, monkeypatch):
    """Each case runs with the namespaces where this machine has them, and without (the audit hook
    and the stripped environment must hold alone)."""
    if request.param == "namespaces":
        if not sandbox.namespace_prefix():
            pytest.skip("no user namespaces on this machine")
    else:
        monkeypatch.setattr(sandbox, "namespace_prefix", lambda: ())
    return request.param


def test_code_under_test_reads_no_ssh_key(fake_home, layers):
    key = fake_home / ".ssh" / "id_rsa"
    attempts = {
        "~ expanded": "import os\nprint(open(os.path.expanduser('~/.ssh/id_rsa')).read())\n",
        "absolute path": f"print(open({str(key)!r}).read())\n",
        "pathlib": f"import pathlib\nprint(pathlib.Path({str(key)!r}).read_text())\n",
        "listing": f"import os\nprint(os.listdir({str(key.parent)!r}))\n",
        "hard link": f"import os\nos.link({str(key)!r}, 'k')\nprint(open('k').read())\n",
        "symlink": f"import os\nos.symlink({str(key)!r}, 'k')\nprint(open('k').read())\n",
        "hf token": f"print(open({str(fake_home / '.cache/huggingface/token')!r}).read())\n",
    }
    for what, code in attempts.items():
        outcome = sandbox.run_tests(code, "assert True", timeout=5)
        assert outcome.score == 0.0, what
        assert leaked(outcome) == [], what
        assert "not allowed" in outcome.detail or "No such file" in outcome.detail, (what, outcome.detail)


def test_code_under_test_sees_no_secret_of_the_environment(fake_home, layers):
    parent = os.getpid()
    code = ("import os\n"
            "print(sorted(os.environ.items()))\n"
            "for pid in [os.getppid(), " + str(parent) + "]:\n"
            "    for name in ('environ', 'cmdline'):\n"
            "        try:\n"
            "            print(open(f'/proc/{pid}/{name}', 'rb').read())\n"
            "        except OSError as exc:\n"
            "            print('refused', exc)\n")
    outcome = sandbox.run_tests(code, "assert True", timeout=5)
    assert outcome.score == 1.0 and leaked(outcome) == []
    assert "refused" in outcome.detail  # the parent's /proc entries are refused, not just empty
    env = sandbox.run_tests("import os\n", "assert set(os.environ) <= {'HOME', 'LANG', 'PATH', 'TMPDIR', 'LC_CTYPE'}, "
                                           "sorted(os.environ)")
    assert env.score == 1.0, env.detail
    fresh = sandbox.run_tests("import os\n", "assert os.environ['HOME'] == os.getcwd() and os.listdir('.') == []")
    assert fresh.score == 1.0, fresh.detail


def test_the_interpreter_still_reads_its_own_files_under_home(fake_home):
    """The interpreter's libraries may live under HOME (pyenv, a venv): they stay readable."""
    code = "import json, decimal, zoneinfo, email.mime.text\nimport linecache\n"
    assert sandbox.run_tests(code, f"assert open({json.__file__!r}).read()").score == 1.0


# (b) a person's reward file --------------------------------------------------------------------------

REWARD_FILE = '''
from workbench.rewards.sandbox import run_tests

SEEN = []

def runs_the_code(prompts, completions, **kwargs):
    SEEN.append(sorted(kwargs))
    return [run_tests(c, "assert True", timeout=5).score for c in completions]
'''


def test_a_reward_file_gets_the_records_only_and_its_sandbox_no_secret(fake_home, tmp_path):
    """The reward file is trusted code run in the scoring process; it receives the prompts, the
    completions and the record's columns, and the completions' code it runs through the sandbox
    reads no key and no secret."""
    from workbench.rewards import combine, load_rewards

    path = tmp_path / "rewards.py"
    path.write_text(REWARD_FILE)
    [reward] = load_rewards("runs_the_code", str(path))
    stealing = [f"print(open({str(fake_home / '.ssh' / 'id_rsa')!r}).read())",
                "import os\nprint(dict(os.environ))\nassert 'HF_TOKEN' in os.environ"]
    total, _ = combine([reward], ["p1", "p2"], stealing, answer=["a", "b"], record_index=[0, 1])
    assert total == [0.0, 0.0]
    assert reward.func.__globals__["SEEN"] == [["answer", "record_index"]]
    print_env = sandbox.run_tests("import os\nprint(dict(os.environ))\n", "assert False")
    assert leaked(print_env) == []


async def test_opening_a_shared_project_in_the_app_runs_none_of_its_reward_file(home, tmp_path):
    """A project's defaults may name a reward file: the method form shows it, and nothing runs it
    until a run (or the dry run) is started by the person."""
    from screens.app import WorkbenchApp
    from screens.method import MethodScreen
    from workbench import project

    marker = tmp_path / "ran"
    p = project.create("shared")
    (p.path / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                    "def evil(prompts, completions, **kw):\n    return [1.0] * len(completions)\n")
    p.defaults = {"grpo": {"reward_file": "evil.py", "rewards": "evil:1"}}
    p.save()

    class MethodApp(WorkbenchApp):
        def on_mount(self) -> None:
            self.push_screen(MethodScreen("shared"))

    async with MethodApp().run_test(size=(120, 36)) as pilot:
        options = pilot.app.screen.query_one("#methods")
        options.highlighted = options.get_option_index("grpo")
        deadline = time.monotonic() + 30
        while not pilot.app.screen.query("#param-reward_file"):
            assert time.monotonic() < deadline, "the method form did not open"
            await pilot.pause(0.1)
        assert pilot.app.screen.query_one("#param-reward_file", Input).value == "evil.py"
        await pilot.pause(0.5)
    assert not marker.exists()


# (c) terminal escape sequences in a dataset and in a model's answers ---------------------------------

HOSTILE = ("clear\x1b[2J clip\x1b]52;c;cHduZWQ=\x07 title\x1b]0;pwned\x07 csi\x9b31m red"
           " back\rover bell\x07 del\x7f end")
RAW = ("\x1b", "\x07", "\x9b", "\r", "\x7f")  # none of these may reach the terminal


def painted(app) -> str:
    """Everything on the app's screen as the terminal would be sent it (rendered to SVG text)."""
    return app.export_screenshot()


def assert_neutral(app) -> None:
    screen = painted(app)
    assert not [c for c in RAW if c in screen], [hex(ord(c)) for c in RAW if c in screen]
    assert "␛[2J" in screen  # the sequence is shown, harmless, as a visible mark


async def until(pilot, condition, timeout: float = 30.0, what: str = "the screen") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.1)


def test_printable_marks_every_control_character():
    assert printable(HOSTILE) == ("clear␛[2J clip␛]52;c;cHduZWQ=␇ title␛]0;pwned␇ csi␛[31m red"
                                  " back␍over bell␇ del␡ end")
    assert printable("a\tb\nc\r\nd") == "a\tb\nc\nd"  # tabs and line ends (CRLF too) stay
    assert printable("naïve 日本 ␛") == "naïve 日本 ␛"
    assert all(ord(c) >= 0x20 or c in "\t\n" for c in printable("".join(map(chr, range(0xA0)))))


def test_the_import_report_and_the_export_lines_mark_control_characters():
    from screens.data.importer import report_text
    from screens.export.gguf import file_line
    from workbench.data.import_report import ImportReport, Problem
    from workbench.run.events import Artifact

    report = ImportReport(source=f"/data/x{HOSTILE}.jsonl", dataset="x", problems=[Problem(3, HOSTILE)],
                          notes=[HOSTILE])
    lines = [report_text(report).plain, file_line(Artifact(path=f"/out/m{HOSTILE}.gguf", verification=HOSTILE)).plain]
    for plain in lines:
        assert not [c for c in RAW if c in plain] and "␛[2J" in plain


class Tty:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_the_cli_marks_control_characters_on_a_terminal_only():
    from workbench.data.report_text import format_show

    assert for_stream(HOSTILE, Tty(True)) == printable(HOSTILE)
    assert for_stream(HOSTILE, Tty(False)) == HOSTILE  # a file or pipe gets the data as it is
    shown = {"index": 0, "dataset": "d", "kind": "chat", "tokens": 3, "loss_tokens": 1, "truncated": False,
             "max_length": 8, "segments": [{"text": HOSTILE, "loss": False}, {"text": HOSTILE, "loss": True}]}
    on_tty = format_show(shown, colour=True)
    assert "\x1b[2J" not in on_tty and "\x9b" not in on_tty and "\r" not in on_tty and "␛[2J" in on_tty
    assert on_tty.count("\x1b[") == 2  # only the colour of the learned run: on, off
    assert HOSTILE in format_show(shown, colour=False)


FAKE_DATA = r'''
import json, sys
hostile = json.loads(sys.argv[1])
args = sys.argv[2:]
if "--show" in args:
    print(json.dumps({"index": 0, "dataset": "evil", "kind": "chat", "record": {}, "tokens": 9, "loss_tokens": 4,
                      "truncated": False, "segments": [{"text": "user: " + hostile, "loss": False},
                                                       {"text": hostile, "loss": True}]}))
else:
    print(json.dumps({"project": "evil", "datasets": [{"name": "evil", "kind": "chat", "records": 3, "split": "train"}],
                      "kinds": {"chat": 3}, "tokens": {"max_length": 128, "min": 1, "median": 2, "p95": 3, "max": 3,
                      "histogram": [{"lo": 0, "hi": 4, "count": 3}], "truncated": 0},
                      "preflight": {"errors": [hostile], "warnings": [hostile]}}))
'''


@pytest.fixture
def evil_project(home, tmp_path):
    """A project whose dataset, imported by the real importer, carries escape sequences everywhere."""
    from workbench import project
    from workbench.data.importer import import_file

    project.create("evil")
    records = [{"messages": [{"role": "user", "content": f"{i} {HOSTILE}"},
                             {"role": "assistant", "content": f"answer {HOSTILE}"}]} for i in range(3)]
    import_file("evil", write_jsonl(tmp_path / "evil.jsonl", records))
    script = tmp_path / "fake_data.py"
    script.write_text(FAKE_DATA)
    return [sys.executable, str(script), json.dumps(HOSTILE)]


async def test_the_data_screen_shows_escape_sequences_as_marks(evil_project):
    from screens.app import WorkbenchApp
    from screens.data.screen import DataScreen

    async with WorkbenchApp().run_test(size=(140, 40)) as pilot:
        screen = DataScreen("evil", command=evil_project)
        await pilot.app.push_screen(screen)
        await until(pilot, lambda: screen.query_one("#records", DataTable).row_count == 3, what="the records")
        await until(pilot, lambda: "␛[2J" in str(screen.query_one("#rendered", Static).render()), what="the render")
        await until(pilot, lambda: "␛" in str(screen.query_one("#preflight", Static).render()), what="the statistics")
        await pilot.pause()
        assert_neutral(pilot.app)


async def test_the_rank_screen_shows_escape_sequences_as_marks(home):
    from tests.ui.test_rank import RankApp, add_group, cards, make_session
    from workbench.ranking import candidates

    run_dir = make_session(project="evil", alive=False)
    candidates.write_group(run_dir, 0, 0, [{"role": "user", "content": HOSTILE}],
                           [{"text": f"{k} {HOSTILE}", "source": f"model\x1b[2J{k}"} for k in range(2)]
                           + [{"text": HOSTILE, "source": "base"}])
    add_group(run_dir, 1)
    async with RankApp("evil", run_dir.name).run_test(size=(140, 40)) as pilot:
        screen = pilot.app.screen
        await until(pilot, lambda: screen.group is not None and len(cards(screen)) == 3, what="the cards")
        await pilot.pause()
        assert_neutral(pilot.app)
        assert "␛[2J" in cards(screen)[0].border_title  # the model's name in the card's title too


async def test_the_judge_template_is_edited_with_its_escape_sequences_as_marks(home):
    from textual.widgets import TextArea

    from screens.rank.judge import JudgeScreen
    from tests.ui.test_rank import RankApp, add_group, make_session
    from tests.ui.test_rank import wait_for as rank_wait_for
    from workbench.ranking.judge_params import template_path

    run_dir = make_session(project="evil", alive=False)
    add_group(run_dir, 0)
    template_path("evil").write_text(f"Grade {{prompt}} and {{answer}} {HOSTILE}", encoding="utf-8")
    async with RankApp("evil", run_dir.name).run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        await pilot.press("j")
        await rank_wait_for(pilot, lambda: isinstance(pilot.app.screen, JudgeScreen), what="the judge modal")
        area = pilot.app.screen.query_one("#template", TextArea)
        await rank_wait_for(pilot, lambda: area.text.startswith("Grade"), what="the template")
        assert "\x1b" not in area.text and "␛" in area.text
        await pilot.pause()
        assert_neutral(pilot.app)


async def test_the_reward_dry_run_and_the_monitor_show_escape_sequences_as_marks(home, tmp_path):
    from screens.monitor import MonitorScreen
    from screens.reward_dry_run import RewardDryRun
    from tests.ui.test_monitor import fake_run, write_events
    from workbench.run import events as ev

    report = {"rewards": [{"name": "evil", "weight": 1.0}], "model": "base", "sampled": True,
              "warnings": [HOSTILE], "prompts": [{"index": 0, "prompt": HOSTILE,
                                                  "rows": [{"completion": HOSTILE, "scores": {"evil": 1.0},
                                                            "total": 1.0}]}]}
    child = tmp_path / "fake_rewards.py"
    child.write_text(f"import json\nprint(json.dumps({report!r}))\n")
    dry_run = RewardDryRun("evil", "grpo", {}, [], command=(sys.executable, str(child)))

    class One(App):
        def on_mount(self) -> None:
            self.push_screen(dry_run)

    async with One().run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: dry_run.report is not None, what="the dry run's table")
        await pilot.pause()
        assert_neutral(pilot.app)

    from workbench import project
    project.create("evil")
    run_dir = fake_run("evil", "run-1")
    t0 = time.time()
    write_events(run_dir, [ev.Started(pid=1, method="sft", time=t0), ev.Status(message=HOSTILE, time=t0 + 1),
                           ev.Error(kind="RuntimeError", message=HOSTILE, time=t0 + 2)])

    class Monitor(App):
        def on_mount(self) -> None:
            self.push_screen(MonitorScreen("evil", "run-1"))

    async with Monitor().run_test(size=(140, 40)) as pilot:
        screen = pilot.app.screen
        await until(pilot, lambda: screen.query_one("#error", Static).display, what="the failure banner")
        await pilot.pause()
        assert_neutral(pilot.app)


# (d) links out of the projects home --------------------------------------------------------------


@pytest.fixture
def linked(home, tmp_path, chat_file):
    """A project with a dataset, and a folder outside the projects home holding a secret."""
    from workbench import project
    from workbench.data.importer import import_file

    project.create("shared")
    import_file("shared", chat_file)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret-0451\n")
    return outside


def test_a_dataset_linked_outside_the_home_is_refused(linked):
    from tests.faults.conftest import cli
    from workbench import locations, project

    data = locations.datasets_dir("shared") / "chat.jsonl"
    data.unlink()
    data.symlink_to(linked / "secret.txt")
    with pytest.raises(project.ProjectError, match="outside the projects home"):
        project.load("shared")
    done = cli("data", "shared")
    assert done.returncode == 1 and "secret-0451" not in done.stdout + done.stderr
    assert f"leads to {linked / 'secret.txt'}, outside the projects home" in done.stderr
    listed = cli("list")  # the project is not listed, and the list says so
    assert listed.returncode == 0 and "shared" not in listed.stdout
    assert listed.stderr.startswith("workbench: project 'shared' not listed: ")
    assert f"leads to {linked / 'secret.txt'}, outside the projects home" in listed.stderr

    from screens.projects import read_rows

    refused = []
    assert read_rows(refused) == [] and refused[0][0] == "shared" and "outside the projects home" in refused[0][1]


def test_a_file_of_a_run_linked_outside_the_home_stops_its_resume(linked):
    """A link placed inside a run folder (its events, its log, a checkpoint) would have the worker write
    through it: the launcher refuses to start, naming the link, and nothing is written outside."""
    from workbench import locations
    from workbench.jobs import launch
    from workbench.registry.specs import make_spec
    from workbench.run import events as ev
    from workbench.run import layout

    spec = make_spec("shared", "sft", {"max_steps": 4})
    spec.id = "20250101-000000-sft"
    run = locations.run_dir("shared", spec.id)
    run.mkdir()
    spec.save(run)
    (run / layout.CHECKPOINTS / "checkpoint-2").mkdir(parents=True)
    (run / layout.CHECKPOINTS / "checkpoint-2" / layout.CHECKPOINT_COMPLETE).write_text("{}")
    writer = ev.EventWriter(run / layout.EVENTS)
    writer.emit(ev.Started())
    writer.close()
    (run / layout.STDERR).symlink_to(linked / "secret.txt")
    with pytest.raises(launch.LaunchError, match=r"stderr.log leads to .*outside the projects home"):
        launch.resume("shared", "20250101-000000-sft")
    (run / layout.STDERR).unlink()
    (run / layout.CHECKPOINTS / "checkpoint-4").symlink_to(linked, target_is_directory=True)
    with pytest.raises(launch.LaunchError, match=r"checkpoint-4 leads to .*outside the projects home"):
        launch.resume("shared", "20250101-000000-sft")
    assert (linked / "secret.txt").read_text() == "secret-0451\n"
    assert sorted(p.name for p in linked.iterdir()) == ["secret.txt"]


def test_runs_linked_outside_the_home_are_neither_read_nor_written(linked):
    from tests.faults.conftest import cli
    from workbench import locations, project

    runs = locations.project_dir("shared") / "runs"
    runs.rmdir()
    runs.symlink_to(linked, target_is_directory=True)
    with pytest.raises(project.ProjectError, match="outside the projects home"):
        project.load("shared")
    with pytest.raises(locations.OutsideHome):
        locations.run_dir("shared", "20250101-000000-sft")
    done = cli("train", "shared", "--method", "sft", "--set", "max_steps=1")
    assert done.returncode != 0 and "outside the projects home" in done.stderr
    assert sorted(p.name for p in linked.iterdir()) == ["secret.txt"]  # nothing written through the link


def test_one_run_folder_linked_outside_is_refused_and_links_inside_the_home_are_fine(linked, tmp_path):
    from workbench import locations, project

    runs = locations.runs_dir("shared")
    (runs / "20250101-000000-sft").symlink_to(linked, target_is_directory=True)
    with pytest.raises(locations.OutsideHome, match="Remove the link"):
        locations.run_dir("shared", "20250101-000000-sft")
    other = project.create("other")
    (other.path / "datasets" / "chat.jsonl").symlink_to(locations.datasets_dir("shared") / "chat.jsonl")
    other.datasets = list(project.load("shared").datasets)
    other.save()
    assert project.load("other").dataset_path("chat").read_text().count("\n") == 40


def test_the_projects_home_itself_may_be_a_link(tmp_path, monkeypatch, chat_file):
    from workbench import locations, project
    from workbench.data.importer import import_file

    real = tmp_path / "real-home"
    real.mkdir()
    (tmp_path / "home-link").symlink_to(real, target_is_directory=True)
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home-link"))
    project.create("linked")
    import_file("linked", chat_file)
    assert project.load("linked").dataset_path("chat").exists()
    assert locations.run_dir("linked", "r1").parent == real / "linked" / "runs"
