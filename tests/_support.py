"""Small helpers shared by the test fixtures."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def backend_unavailable(message: str) -> NoReturn:
    """A real backend the test needs is unreachable: fail under CI=true, skip elsewhere."""
    if in_ci():
        pytest.fail(f"{message} (CI=true: real backends are required)", pytrace=False)
    pytest.skip(message)


def xdist_index(worker_id: str) -> int:
    """0 for the controller or gw0, n for gwn."""
    return int(worker_id[2:]) if worker_id.startswith("gw") else 0


class RecordingMetrics:
    """A metrics client that keeps every counter, timer and gauge it is given."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, float, dict[str, str]]] = []

    def incr(self, name: str, value: int = 1, tags: Mapping[str, str] | None = None) -> None:
        self.lines.append(("c", name, value, dict(tags or {})))

    def timing(self, name: str, ms: float, tags: Mapping[str, str] | None = None) -> None:
        self.lines.append(("ms", name, ms, dict(tags or {})))

    def gauge(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        self.lines.append(("g", name, value, dict(tags or {})))

    def close(self) -> None:
        pass

    def total(self, name: str, **tags: str) -> float:
        """The sum of counter ``name`` over lines carrying exactly ``tags``."""
        return sum(
            value
            for kind, metric, value, got in self.lines
            if kind == "c" and metric == name and got == tags
        )
