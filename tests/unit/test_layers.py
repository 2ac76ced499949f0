"""The engine's layout holds: no import cycle between its modules, and no module found by a name in a string
except the job a worker runs (the runner its spec names)."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[2]


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of more than one module (or one importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:
        nonlocal counter
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert strongly_connected(graph) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_inside_the_engine():
    built = grimp.build_graph("workbench")
    graph = {m: set() for m in built.modules}
    for module in built.modules:
        graph[module].update(built.find_modules_directly_imported_by(module))
    assert strongly_connected(graph) == []


def test_no_module_is_imported_by_a_name_in_a_string_but_the_workers_runner():
    allowed = {("workbench/jobs/worker.py", "load_runner")}
    found = []
    for package in ("workbench", "screens"):
        for path in sorted((REPO / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            functions = {id(n): f.name for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                         for n in ast.walk(f)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                        node.func.attr in ("import_module", "__import__", "spec_from_file_location"):
                    where = (str(path.relative_to(REPO)), functions.get(id(node), ""))
                    if where not in allowed and not _loads_a_user_file(where):
                        found.append(f"{where[0]}:{node.lineno} {node.func.attr}")
    assert found == []


def _loads_a_user_file(where: tuple[str, str]) -> bool:
    """A person's own reward file is loaded from its path: not a module of the project."""
    return where[0] == "workbench/rewards/user.py"
