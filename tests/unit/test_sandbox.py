"""The code sandbox, for real: each harmful completion scores 0 and leaves the machine and the run alone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from workbench.rewards import sandbox
from workbench.rewards.sandbox import run_tests

ADD = "def add(a, b):\n    return a + b\n"


@pytest.fixture(autouse=True)
def own_tmp(tmp_path, monkeypatch):
    """Sandbox folders go under this test's tmp, so the test can see that they are removed."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    assert not [p for p in folder.iterdir() if p.name.startswith("workbench-sandbox-")]


def test_passing_and_failing_tests():
    assert run_tests(ADD, "assert add(2, 3) == 5").score == 1.0
    failed = run_tests(ADD, "assert add(2, 3) == 6, 'wrong sum'")
    assert (failed.score, failed.status) == (0.0, "failed") and "wrong sum" in failed.detail
    broken = run_tests("def add(a, b) return", "assert add(1, 1) == 2")
    assert broken.score == 0.0 and "SyntaxError" in broken.detail


def test_a_list_of_tests_scores_the_share_that_pass():
    outcome = run_tests(ADD, ["assert add(1, 1) == 2", "assert add(1, 1) == 3", "assert add(0, 0) == 0"])
    assert (outcome.score, outcome.passed, outcome.total) == (2 / 3, 2, 3)


def test_an_infinite_loop_is_killed_at_the_time_limit():
    start = time.monotonic()
    outcome = run_tests("while True:\n    pass\n", "assert True", timeout=1.0)
    assert (outcome.score, outcome.status) == (0.0, "timeout")
    assert time.monotonic() - start < 5


def test_a_memory_bomb_hits_the_memory_limit():
    outcome = run_tests("blocks = []\nwhile True:\n    blocks.append(bytearray(50 * 1024 * 1024))\n", "assert True",
                        timeout=10, memory_mb=256)
    assert outcome.score == 0.0 and "MemoryError" in outcome.detail


def test_a_fork_bomb_scores_zero_and_leaves_no_process(tmp_path):
    marker = tmp_path / "forked"
    code = (f"import os\nwhile True:\n    pid = os.fork()\n    if pid == 0:\n"
            f"        open({str(marker)!r}, 'a').write('x')\n")
    outcome = run_tests(code, "assert True", timeout=2)
    assert outcome.score == 0.0 and "os.fork is not allowed" in outcome.detail
    assert not marker.exists()


def test_the_resource_limits_are_set_in_the_process():
    tests = ("import resource\n"
             "assert resource.getrlimit(resource.RLIMIT_AS)[1] == 300 * 1024 * 1024\n"
             "assert resource.getrlimit(resource.RLIMIT_CPU)[1] == 4\n"
             f"assert resource.getrlimit(resource.RLIMIT_FSIZE)[1] == {sandbox.FILE_LIMIT}\n"
             f"assert resource.getrlimit(resource.RLIMIT_NPROC)[1] == {sandbox.PROCESS_LIMIT}\n")
    assert run_tests("", tests, timeout=3, memory_mb=300).score == 1.0


def test_a_file_written_outside_the_temp_dir_is_refused(tmp_path):
    outside = tmp_path / "outside.txt"
    code = f"open({str(outside)!r}, 'w').write('pwned')\n"
    outcome = run_tests(code, "assert True")
    assert outcome.score == 0.0 and "not allowed" in outcome.detail
    assert not outside.exists()
    inside = run_tests("open('notes.txt', 'w').write('ok')\n", "assert open('notes.txt').read() == 'ok'")
    assert inside.score == 1.0  # its own folder is writable


def test_rm_through_the_shell_or_shutil_never_reaches_outside(tmp_path):
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "data.txt").write_text("precious")
    for code in (f"import os\nopen('x', 'w').close()\nos.system('rm -rf x {keep}')\n",
                 f"import shutil\nshutil.rmtree({str(keep)!r})\n",
                 f"import os\nos.remove({str(keep / 'data.txt')!r})\n",
                 f"import subprocess\nsubprocess.run(['rm', '-rf', {str(keep)!r}])\n"):
        assert run_tests(code, "assert True").score == 0.0
    assert (keep / "data.txt").read_text() == "precious"


@pytest.fixture
def listener():
    """A local TCP server that records whether anyone connected."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    hits = []
    done = threading.Event()

    def accept():
        while not done.is_set():
            try:
                conn, _ = server.accept()
                hits.append(1)
                conn.close()
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], hits
    done.set()
    thread.join()
    server.close()


def test_a_network_attempt_fails(listener):
    port, hits = listener
    code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'hi')\n"
    outcome = run_tests(code, "assert True", timeout=5)
    assert outcome.score == 0.0 and "not allowed" in outcome.detail
    time.sleep(0.3)
    assert hits == []


def test_the_network_namespace_alone_has_no_route_out(listener):
    prefix = sandbox.namespace_prefix()
    if not prefix:
        pytest.skip("no user/network namespaces here: the audit hook alone blocks sockets")
    port, hits = listener
    code = (f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "    print('connected')\nexcept OSError as exc:\n    print('refused', exc)\n")
    done = subprocess.run([*prefix, sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=30)
    assert done.stdout.startswith("refused") and hits == []


def test_the_environment_is_stripped(monkeypatch):
    monkeypatch.setenv("WORKBENCH_SECRET_TOKEN", "hunter2")
    assert run_tests("import os\n", "assert 'WORKBENCH_SECRET_TOKEN' not in os.environ").score == 1.0
    assert run_tests("import os\n", "assert os.environ['HOME'] == os.getcwd()").score == 1.0


def test_printing_a_result_line_or_exiting_early_does_not_pass():
    fake = 'print("0" * 32 + \' {"passed": 1, "total": 1, "error": ""}\')\n'
    assert run_tests(fake, "assert False").score == 0.0
    assert run_tests("import os\nos._exit(0)\n", "assert True").score == 0.0
    assert run_tests("import sys\nsys.exit(0)\n", "assert True").score == 0.0


def test_ordinary_library_code_still_works():
    code = ("from collections import namedtuple\nimport dataclasses, json, re, sys, warnings\n"
            "sys.setrecursionlimit(3000)\nPoint = namedtuple('Point', 'x y')\nwarnings.warn('fine')\n"
            "def fact(n):\n    return 1 if n < 2 else n * fact(n - 1)\n")
    assert run_tests(code, "assert fact(500) > 0 and Point(1, 2).y == 2").score == 1.0


def test_the_run_is_unharmed_after_the_bombs():
    """The caller's process keeps working and its children are gone after each case."""
    before = set(os.listdir("/proc")) if os.path.isdir("/proc") else set()
    run_tests("import os\nos.fork()\n", "assert True", timeout=1)
    run_tests("x = 'a' * (10 ** 10)\n", "assert True", memory_mb=128)
    assert run_tests(ADD, "assert add(1, 2) == 3").score == 1.0
    if before:
        leftover = [p for p in set(os.listdir("/proc")) - before if p.isdigit()
                    and "sandbox" in _cmdline(p)]
        assert leftover == []


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""
