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
from textual.widgets import DataTable, Static

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
    from textual.widgets import Input
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
