"""Run a completion's code against unit tests in a sandboxed process.

Layers, each of which alone stops some harm and together keep a run safe from code a model
wrote (an infinite loop, a memory or fork bomb, `rm`, a network call):
- a fresh `python -I -B` process in its own session, in a throw-away temporary directory
  (removed after) that is also its HOME, with an environment of PATH, LANG, HOME and TMPDIR only
  (no token or key of the parent's), killed as a process group at the time limit;
- resource limits set before exec: address space, CPU seconds, file size, open files, processes;
- on Linux, when `unshare` may create namespaces: no network (a new network namespace with
  only a down loopback) and a new PID namespace with its own /proc, so a process that escaped
  the group still dies with the sandbox and no other process's environment can be read;
- inside the process, before the code runs, an audit hook that refuses sockets, new processes
  (system, fork, exec, spawn, Popen), ctypes, opening folders, writes, removals, renames or
  hard links outside the temporary directory, and reads of the person's home folder (`~/.ssh`,
  `~/.aws`, `~/.cache/huggingface/token`: the interpreter's own files there excepted) and of
  other processes' /proc entries.
The harness reports through a line marked with a random nonce, so what the code prints cannot
pass for a result by accident; a missing line scores 0. The layers protect the machine and the
run; they do not make the score proof against code written to forge the harness's report.
Scores: 1 when the code runs and the tests pass, 0 otherwise; with a list of tests, the share
of tests that pass (0 when the code itself fails).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache

FILE_LIMIT = 16 * 1024 * 1024
PROCESS_LIMIT = 64
OPEN_FILES_LIMIT = 256
OUTPUT_TAIL = 4000

HARNESS = r'''
import io, json, os, sys
payload = json.loads(sys.stdin.read())
sys.stdin.close()
nonce, code, tests = payload["nonce"], payload["code"], payload["tests"]
root = os.path.realpath(os.getcwd())
own_proc = os.path.realpath("/proc/self")
hidden = [os.path.realpath(p) for p in payload["hidden"]]
needed = {os.path.realpath(p) for p in [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *sys.path] if p}
needed = [p for p in needed if not any(h == p or h.startswith(p.rstrip(os.sep) + os.sep) for h in hidden)]
result_fd = os.dup(1)
BLOCKED = {"os.system", "os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn", "os.kill",
           "os.killpg", "subprocess.Popen", "pty.spawn", "os.chroot"}
PATH_EVENTS = {"os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1),
               "os.chmod": (0,), "os.chown": (0,), "os.symlink": (1,),
               "os.truncate": (0,), "os.utime": (0,), "os.mkfifo": (0,), "os.mknod": (0,), "os.link": (0, 1),
               "os.setxattr": (0,), "os.removexattr": (0,), "shutil.rmtree": (0,),
               "shutil.copyfile": (1,), "shutil.copytree": (1,), "shutil.move": (1,), "shutil.chown": (0,)}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

def inside(path):
    if isinstance(path, int):
        return True
    if not isinstance(path, (str, bytes, os.PathLike)):
        return False
    return under(os.path.realpath(os.fsdecode(os.fspath(path))), root)

def under(full, folder):
    return full == folder or full.startswith(folder.rstrip(os.sep) + os.sep)

def private(path):
    """A person's home folder (keys, tokens, credentials) or another process's /proc entry."""
    if isinstance(path, int) or not isinstance(path, (str, bytes, os.PathLike)):
        return False
    full = os.path.realpath(os.fsdecode(os.fspath(path)))
    if under(full, root):
        return False
    if full.startswith("/proc/") and full.split("/")[2].isdigit() and not under(full, own_proc):
        return True
    return any(under(full, h) for h in hidden) and not any(under(full, n) for n in needed)

def hook(event, args):
    if event in BLOCKED or event.startswith(("socket.", "ctypes.", "_posixsubprocess.", "winreg.")):
        raise PermissionError(f"{event} is not allowed in the sandbox")
    if event == "open":
        path, mode, flags = args
        writing = (mode is not None and any(m in mode for m in "wax+")) or (flags or 0) & WRITE_FLAGS
        if writing and not inside(path):
            raise PermissionError(f"writing {path} is not allowed in the sandbox")
        if not isinstance(path, int) and os.path.isdir(path) and not inside(path):
            raise PermissionError(f"opening the folder {path} is not allowed in the sandbox")
        if private(path):
            raise PermissionError(f"reading {path} is not allowed in the sandbox")
    elif event in ("os.listdir", "os.scandir") and args and private(args[0]):
        raise PermissionError(f"listing {args[0]} is not allowed in the sandbox")
    elif event == "import" and args[0] in ("_posixsubprocess", "ctypes", "_ctypes"):
        raise PermissionError(f"importing {args[0]} is not allowed in the sandbox")
    elif event in PATH_EVENTS:
        for i in PATH_EVENTS[event]:
            if i < len(args) and not inside(args[i]):
                raise PermissionError(f"{event} on {args[i]} is not allowed in the sandbox")

def report(passed, total, error):
    line = nonce + " " + json.dumps({"passed": passed, "total": total, "error": error[:500]}) + "\n"
    os.write(result_fd, line.encode())

def run():
    namespace = {"__name__": "__main__"}
    try:
        exec(compile(code, "<completion>", "exec"), namespace)
    except BaseException as exc:
        return 0, len(tests), f"the code raised {type(exc).__name__}: {exc}"
    passed, error = 0, ""
    for i, test in enumerate(tests, start=1):
        try:
            exec(compile(test, f"<test {i}>", "exec"), namespace)
            passed += 1
        except BaseException as exc:
            error = error or f"test {i}: {type(exc).__name__}: {exc}"
    return passed, len(tests), error

sys.stdout = sys.stderr
sys.addaudithook(hook)
report(*run())
os._exit(0)
'''


@dataclass(frozen=True)
class Outcome:
    score: float
    passed: int
    total: int
    status: str  # passed | failed | timeout | crashed
    detail: str = ""


def run_tests(code: str, tests: str | list[str], timeout: float = 5.0, memory_mb: int = 512) -> Outcome:
    """Run `code`, then `tests` (a snippet, or a list of snippets scored by the share that pass)."""
    snippets = [tests] if isinstance(tests, str) else [str(t) for t in (tests or [])]
    if not snippets:
        return Outcome(0.0, 0, 0, "failed", "no tests to run")
    nonce = secrets.token_hex(16)
    payload = json.dumps({"nonce": nonce, "code": code, "tests": snippets, "hidden": private_folders()})
    work = tempfile.mkdtemp(prefix="workbench-sandbox-")
    try:
        with tempfile.TemporaryFile() as output:
            returncode, timed_out = _execute(payload, work, output, timeout, memory_mb)
            output.seek(0)
            text = output.read().decode("utf-8", "replace")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _outcome(text, nonce, len(snippets), returncode, timed_out, isinstance(tests, str))


def _execute(payload: str, work: str, output, timeout: float, memory_mb: int) -> tuple[int | None, bool]:
    command = [*namespace_prefix(), sys.executable, "-I", "-B", "-c", HARNESS]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": work, "TMPDIR": work}
    process = subprocess.Popen(command, cwd=work, env=env, stdin=subprocess.PIPE, stdout=output,
                               stderr=subprocess.STDOUT, start_new_session=True,
                               preexec_fn=_limits(timeout, memory_mb))
    timed_out = False
    try:
        process.communicate(payload.encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        _kill_group(process.pid)
        process.wait()
    return process.returncode, timed_out


def private_folders() -> list[str]:
    """The person's home folder, by `$HOME` and by the password database: where SSH keys, tokens and
    cloud credentials live. The sandboxed code reads none of it (the interpreter's own files excepted)."""
    folders = []
    for folder in (os.environ.get("HOME"), _passwd_home()):
        real = os.path.realpath(folder) if folder else ""
        if real and real != os.sep and real not in folders:
            folders.append(real)
    return folders


def _passwd_home() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_dir
    except (ImportError, KeyError):
        return ""


def _limits(timeout: float, memory_mb: int):
    """The resource limits, applied in the child between fork and exec."""
    import resource

    memory = memory_mb * 1024 * 1024
    cpu = math.ceil(timeout) + 1

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
        resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES_LIMIT, OPEN_FILES_LIMIT))
        resource.setrlimit(resource.RLIMIT_NPROC, (PROCESS_LIMIT, PROCESS_LIMIT))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@lru_cache(maxsize=1)
def namespace_prefix() -> tuple[str, ...]:
    """`unshare` options that give the sandbox no network (and its own PID space, with a /proc that
    shows its own processes only), or () where namespaces cannot be made (not Linux, no util-linux,
    user namespaces disabled)."""
    unshare = shutil.which("unshare")
    if not sys.platform.startswith("linux") or unshare is None:
        return ()
    for options in (("-rnpf", "--kill-child", "--mount-proc"), ("-rnpf", "--kill-child"), ("-rn",)):
        try:
            done = subprocess.run([unshare, *options, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return (unshare, *options)
    return ()


def _outcome(text: str, nonce: str, total: int, returncode: int | None, timed_out: bool, single: bool) -> Outcome:
    found = None
    for line in text.splitlines():
        if line.startswith(nonce + " "):
            try:
                found = json.loads(line[len(nonce) + 1:])
            except ValueError:
                found = None
    tail = "\n".join(line for line in text.splitlines() if nonce not in line)[-OUTPUT_TAIL:]
    if found is None:
        if timed_out:
            return Outcome(0.0, 0, total, "timeout", "the time limit was reached")
        return Outcome(0.0, 0, total, "crashed", f"the process ended (exit {returncode}) without a result: {tail}")
    passed = int(found.get("passed", 0))
    error = str(found.get("error", ""))
    if single:
        score = 1.0 if passed == 1 and not error else 0.0
    else:
        score = passed / total
    return Outcome(score, passed, total, "passed" if passed == total else "failed", error or tail)
