"""The job registry: what the worker pool runs and what the scheduler enqueues.

A job is a named unit of pipeline work with a period (for the scheduler)
and a ``run`` function taking the process's resources. Pipeline stages
register here; each stays a one-line wrapper over testable logic in
``ichnaea.pipeline``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis
from sqlalchemy.engine import Engine

from ichnaea.config import Settings


@dataclass(frozen=True, slots=True)
class Resources:
    """What one worker process owns: its settings, DB engine and Redis pool."""

    settings: Settings
    db: Engine
    redis: redis.Redis


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    period_s: float
    # Runs one batch; returns how many items it handled (0 = nothing to do).
    run: Callable[[Resources], int]


def registered_jobs(settings: Settings) -> tuple[Job, ...]:
    """The jobs enabled by these settings. The pipeline stages land with the data pipeline."""
    return ()
