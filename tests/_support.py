"""Small helpers shared by the test fixtures."""

from __future__ import annotations

import os
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
