"""Small helpers shared by the test fixtures."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

import pytest

from ichnaea.api.locate import calibration
from ichnaea.metrics import Metrics


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


# Settings that would take a child `ichnaea` process off its embedded defaults.
_CONFIGURED = ("DB_", "REDIS_", "GEOIP_", "SQLALCHEMY_", "ASSET_", "MAP_")


def embedded_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of an `ichnaea` child process on the embedded defaults in ``data_dir``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(_CONFIGURED)}
    env.update(ICHNAEA_DATA_DIR=str(data_dir), **extra)
    return env


def backend_unavailable(message: str) -> NoReturn:
    """A real backend the test needs is unreachable: fail under CI=true, skip elsewhere."""
    if in_ci():
        pytest.fail(f"{message} (CI=true: real backends are required)", pytrace=False)
    pytest.skip(message)


def pool_workers(parent: int) -> list[int]:
    """The job-running processes of an ``ichnaea worker`` pool: the children of its
    fork server (not the fork server itself, nor the resource tracker)."""

    def children(pid: int) -> list[int]:
        found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
        return [int(child) for child in found.stdout.split()]

    workers = []
    for pid in children(parent):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue  # exited meanwhile
        if b"forkserver" in cmdline:
            workers.extend(children(pid))
    return workers


def xdist_index(worker_id: str) -> int:
    """0 for the controller or gw0, n for gwn."""
    return int(worker_id[2:]) if worker_id.startswith("gw") else 0


class RecordingMetrics(Metrics):
    """A metrics client that keeps every counter, timer and gauge it is given."""

    enabled = True

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, float, dict[str, str]]] = []

    def incr(self, name: str, value: int = 1, tags: Mapping[str, str] | None = None) -> None:
        self.lines.append(("c", name, value, dict(tags or {})))

    def timing(self, name: str, ms: float, tags: Mapping[str, str] | None = None) -> None:
        self.lines.append(("ms", name, ms, dict(tags or {})))

    def gauge(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        self.lines.append(("g", name, value, dict(tags or {})))

    def _of(self, kind: str) -> list[tuple[str, float, dict[str, str]]]:
        return [(name, value, tags) for k, name, value, tags in self.lines if k == kind]

    @property
    def counts(self) -> list[tuple[str, float, dict[str, str]]]:
        """Every counter increment: (name, value, tags)."""
        return self._of("c")

    @property
    def gauges(self) -> list[tuple[str, float, dict[str, str]]]:
        """Every gauge: (name, value, tags)."""
        return self._of("g")

    def counted(self, name: str) -> list[dict[str, str]]:
        """The tags of each increment of counter ``name``."""
        return [tags for got, _, tags in self.counts if got == name]

    def timed(self, name: str) -> list[dict[str, str]]:
        """The tags of each timing of ``name``."""
        return [tags for got, _, tags in self._of("ms") if got == name]

    def total(self, name: str, **tags: str) -> float:
        """The sum of counter ``name`` over lines carrying exactly ``tags``."""
        return sum(
            value for got, value, got_tags in self.counts if got == name and got_tags == tags
        )

    def gauge_names(self) -> set[str]:
        return {name for name, _, _ in self.gauges}

    def gauge_value(self, name: str) -> float:
        """The value of gauge ``name``, which must have been sent exactly once."""
        values = [value for got, value, _ in self.gauges if got == name]
        assert len(values) == 1, f"{name}: {values}"
        return values[0]


def calibrated(kind: str, spread_m: float, networks: int, confidence: int = 95) -> float:
    """The radius the service answers for an internal result of ``kind`` whose spread
    (the original's radius, unbounded) is ``spread_m`` over ``networks`` networks
    (ichnaea.api.locate.calibration, issue 11)."""
    table = calibration.load(confidence).tables[kind]
    return round(table.radius(spread_m, networks), 7)


def parametrized(metafunc: pytest.Metafunc, name: str) -> bool:
    """Whether the test parametrizes ``name`` itself (a fixture hook must not do it again)."""
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0] if marker.args else ""
        if name in ([n.strip() for n in names.split(",")] if isinstance(names, str) else names):
            return True
    return False
