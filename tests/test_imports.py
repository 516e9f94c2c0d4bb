"""The import graph of the package: no cycles, and layers only point down."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ichnaea"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            found: list[str] = []
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            targets.update(t for t in found if t in modules and t != name)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_package_has_no_import_cycles() -> None:
    assert find_cycle(import_graph()) is None


def test_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def importers_of(prefix: str) -> set[str]:
    return {
        name
        for name, targets in import_graph().items()
        if any(t == prefix or t.startswith(prefix + ".") for t in targets)
        and not (name == prefix or name.startswith(prefix + "."))
    }


def test_compiled_core_imports_nothing_from_the_package() -> None:
    graph = import_graph()
    fast = {name for name in graph if name.startswith("ichnaea._fast")}
    assert all(t.startswith("ichnaea._fast") for name in fast for t in graph[name])


def test_only_the_cli_imports_the_web_layer() -> None:
    assert importers_of("ichnaea.web") <= {"ichnaea.cli.roles", "ichnaea.__main__"}


def test_models_import_no_repositories_or_services() -> None:
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith("ichnaea.models"):
            assert not any(
                t.startswith(
                    ("ichnaea.repositories", "ichnaea.api", "ichnaea.web", "ichnaea.worker")
                )
                for t in targets
            ), name
