"""Every name inside a run folder is spelled once, in `workbench/run/layout.py`; and its helpers."""

from __future__ import annotations

import ast
from pathlib import Path

from workbench.run import layout

ROOT = Path(__file__).resolve().parents[2]
LAYOUT = ROOT / "workbench" / "run" / "layout.py"

# Every string constant of layout.py that names something inside a run or plan folder.
NAMES = {value for name, value in vars(layout).items()
         if name.isupper() and isinstance(value, str)}

# The same words used for something that is not a path, each where it is used: (file, word).
NOT_PATHS = {
    ("workbench/export/__init__.py", "merged"),  # the export format `merged`
    ("workbench/export/embedding.py", "merged"),  # the export format an embedding run has
    ("workbench/rewards/model.py", "model"),  # "a model without a score head"
    ("workbench/models.py", "adapter"),  # the kind of a base model `check` names (default, gguf, adapter, folder)
    ("workbench/methods/kit/tracking.py", "tensorboard"),  # the sinks of report_to, named as TRL names them
    ("workbench/methods/kit/tracking.py", "trackio"),
}


def _not_a_path(node: ast.Constant, parents: dict[ast.AST, ast.AST]) -> bool:
    """A dict key, a subscript (`values["model"]`), a `.get`/`.pop` key or a widget id is a word, not a path."""
    parent = parents.get(node)
    if isinstance(parent, ast.Dict) and node in parent.keys:
        return True
    if isinstance(parent, ast.Subscript) and parent.slice is node:
        return True
    if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Attribute) and parent.func.attr in ("get", "pop"):
        return node in parent.args[:1]
    return isinstance(parent, ast.keyword) and parent.arg == "id"


def spelled_names() -> list[str]:
    found = []
    for package in ("workbench", "screens"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == LAYOUT:
                continue
            rel = path.relative_to(ROOT).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"))
            parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in NAMES):
                    continue
                if (rel, node.value) in NOT_PATHS or _not_a_path(node, parents):
                    continue
                found.append(f"{rel}:{node.lineno}: {node.value!r}")
    return found


def test_run_folder_names_are_spelled_only_in_layout():
    found = spelled_names()
    assert not found, "use workbench.run.layout's names instead of spelling them:\n" + "\n".join(found)


def test_the_scan_sees_a_spelled_name(tmp_path):
    source = 'from pathlib import Path\nevents = Path("run") / "events.jsonl"\nkey = {"model": 1}["model"]\n'
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    hits = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in NAMES
            and not _not_a_path(n, parents)]
    assert hits == ["events.jsonl"]


def test_every_exception_is_still_used():
    """An exception whose file no longer says the word must go, so the list stays honest."""
    for rel, word in NOT_PATHS:
        path = ROOT / rel
        assert path.exists(), f"{rel} is listed in NOT_PATHS but does not exist"
        words = {n.value for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                 if isinstance(n, ast.Constant)}
        assert word in words, f"{rel} no longer says {word!r}: remove it from NOT_PATHS"


def test_checkpoints(tmp_path):
    assert layout.checkpoint_name(12) == "checkpoint-12"
    assert layout.checkpoint_step(layout.checkpoint(tmp_path, 12)) == 12
    assert layout.checkpoint_step(tmp_path / "checkpoint-x") is None
    for step in (5, 30, 100):
        folder = layout.checkpoint(tmp_path, step)
        folder.mkdir(parents=True)
        if step != 100:
            (folder / layout.CHECKPOINT_COMPLETE).write_text("{}")
    assert [layout.checkpoint_step(p) for p in layout.complete_checkpoints(tmp_path)] == [5, 30]
    assert layout.latest_checkpoint(tmp_path) == layout.checkpoint(tmp_path, 30)


def test_outputs(tmp_path):
    assert layout.output(tmp_path) is None
    assert layout.output_for(tmp_path, adapter=False) == tmp_path / "model"
    (tmp_path / "model").mkdir()
    assert layout.output(tmp_path) == tmp_path / "model"
    (tmp_path / "adapter").mkdir()
    assert layout.output(tmp_path) == layout.output_for(tmp_path, adapter=True) == tmp_path / "adapter"
    assert layout.scratch(tmp_path / "exports" / "gguf") == tmp_path / "exports" / "gguf.merged-hf"
