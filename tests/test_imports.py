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


def _within(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_only_repositories_and_models_import_the_models() -> None:
    """All SQL lives in ichnaea.repositories; the rest passes engines and connections."""
    outside = importers_of("ichnaea.models") - {
        name for name in import_graph() if _within(name, "ichnaea.repositories")
    }
    assert outside == set()


def test_the_pipeline_never_imports_the_api_or_the_web_layer() -> None:
    graph = import_graph()
    pipeline = [name for name in graph if _within(name, "ichnaea.pipeline", "ichnaea.worker")]
    assert pipeline
    for name in pipeline:
        assert not any(_within(t, "ichnaea.api", "ichnaea.web") for t in graph[name]), name


def test_the_broker_stands_below_everything_but_config_and_logging() -> None:
    graph = import_graph()
    for name in [n for n in graph if _within(n, "ichnaea.broker")]:
        assert all(
            _within(t, "ichnaea.broker", "ichnaea.config", "ichnaea.cpus") for t in graph[name]
        ), (name, graph[name])


# What the pipeline may take from SQLAlchemy: types to pass along and errors to catch.
SQLALCHEMY_ALLOWED = {
    "sqlalchemy": {"Engine", "Connection"},
    "sqlalchemy.engine": {"Engine", "Connection"},
    "sqlalchemy.orm": {"Session"},
    "sqlalchemy.exc": None,  # any error class
}


def sqlalchemy_imports(path: Path) -> list[str]:
    """The SQLAlchemy names ``path`` imports beyond SQLALCHEMY_ALLOWED."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("sqlalchemy") and alias.name != "sqlalchemy.exc":
                    found.append(alias.name)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            module = node.module or ""
            allowed = SQLALCHEMY_ALLOWED.get(module, set())
            if allowed is None:
                continue
            found += [f"{module}.{a.name}" for a in node.names if a.name not in allowed]
    return found


def test_the_pipeline_writes_no_sql() -> None:
    offenders = {}
    for path in sorted((PACKAGE / "pipeline").rglob("*.py")):
        if names := sqlalchemy_imports(path):
            offenders[str(path.relative_to(PACKAGE))] = names
    assert offenders == {}


def test_the_sql_rule_finds_a_statement(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import sqlalchemy as sa\nfrom sqlalchemy import Engine, select\n"
        "from sqlalchemy.exc import OperationalError\n"
    )
    assert sqlalchemy_imports(module) == ["sqlalchemy", "sqlalchemy.select"]


def test_only_the_runner_claims_and_acknowledges_batches() -> None:
    """One loop: no other module of the package claims or acks a queue's batch."""
    calls = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("claim", "ack")
            ):
                calls.add(relative)
    assert calls == {"pipeline/runner.py"}
