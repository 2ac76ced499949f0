"""A person's reward file: a Python file of functions with TRL's reward signature.

    def short(prompts, completions, **kwargs):
        return [1.0 if len(c) < 50 else 0.0 for c in completions]

It is imported from its path by the process that scores (the worker or the dry run), never
by the UI. Every public function defined in the file is a reward named after itself.

The file is the person's own code, trusted as a training script of theirs is: it is not
sandboxed (it may read their files, import their packages, load a model on the GPU) and it
runs with the scoring process's environment. What the workbench hands it is the prompts, the
completions and the record's columns only (a `tokenizer` when a function names that keyword);
nothing runs it before a run or a dry run that names it starts, so opening a project someone
shared runs none of its code, and a reward file from someone else is read before it is named.
Code inside completions is the model's, not the person's: a function that runs it hands it to
`workbench.rewards.sandbox.run_tests` (as the library's `code` reward does), where it gets no
environment variable of the parent's, an empty HOME and no read of the person's home folder.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

from workbench.rewards.library import RewardError


def load_functions(path: str | Path) -> dict[str, Callable[..., Any]]:
    """{name: function} of the public functions defined in the file at `path`."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise RewardError(f"The reward file {file} does not exist.")
    if file.suffix != ".py":
        raise RewardError(f"The reward file {file} should be a Python file (.py).")
    name = "workbench_user_rewards_" + hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise RewardError(f"The reward file {file} cannot be imported.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        raise RewardError(f"The reward file {file} has a syntax error on line {exc.lineno}: {exc.msg}.") from None
    except Exception as exc:  # noqa: BLE001 - anything the file does on import is the file's error
        sys.modules.pop(name, None)
        line = _line_in(file, exc)
        raise RewardError(f"The reward file {file} failed on import{line}: {type(exc).__name__}: {exc}.") from None
    return {n: f for n, f in vars(module).items()
            if inspect.isfunction(f) and f.__module__ == name and not n.startswith("_")}


def _line_in(file: Path, exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == file]
    return f" (line {frames[-1].lineno})" if frames else ""
