"""Test set-up: real MariaDB/SQLite and real Redis (server, embedded, cluster).

Fixtures live in plugin modules, one per backend; tests are plain functions
that ask for what they need.
"""

import re

_CLUSTER = re.compile(r"[\[-]cluster[\]-]")

pytest_plugins = [
    "tests.fixtures_db",
    "tests.fixtures_redis",
    "tests.fixtures_app",
    "tests.fixtures_provider",
    "tests.fixtures_s3",
    "tests.fixtures_pipeline",
]


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    """Say which real backends the passed tests exercised, so a run shows it."""
    passed = terminalreporter.stats.get("passed", [])
    counts = {
        "MariaDB": sum("mysql" in r.keywords or "[real" in r.nodeid for r in passed),
        "Redis server": sum("[server" in r.nodeid or "[real" in r.nodeid for r in passed),
        "SQLite": sum("sqlite" in r.nodeid or "[embedded" in r.nodeid for r in passed),
        "embedded Redis": sum("[embedded" in r.nodeid for r in passed),
        "Redis Cluster": sum(bool(_CLUSTER.search(r.nodeid)) for r in passed),
    }
    line = ", ".join(f"{name}: {count}" for name, count in counts.items())
    terminalreporter.write_line(f"passed tests by backend: {line}")
