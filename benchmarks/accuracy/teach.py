"""Talk to the running service: submit reports, drain the pipeline, ask the queries.

Submissions go to ``/v2/geosubmit`` in batches of ``SUBMIT_BATCH`` reports,
each stamped with the time it was taken (``now - age``). Draining is
``ichnaea process``, which runs every stage until the queues are empty.
Queries go to ``/v1/geolocate/batch``, which answers each query exactly as
``/v1/geolocate`` would, ``LOCATE_BATCH`` at a time; the API key stores no
locate query as a report, so asking never teaches.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import httpx

from benchmarks.accuracy.scans import Query
from benchmarks.accuracy.service import API_KEY, Service

SUBMIT_BATCH = 200
LOCATE_BATCH = 250


def submit(service: Service, reports: Sequence[tuple[int, dict[str, Any]]]) -> None:
    """Post ``(age_ms, report)`` pairs; every answer must be 200."""
    now_ms = int(time.time() * 1000)
    with httpx.Client(base_url=service.url, timeout=120) as client:
        for start in range(0, len(reports), SUBMIT_BATCH):
            items = [
                {"timestamp": now_ms - age_ms, **item}
                for age_ms, item in reports[start : start + SUBMIT_BATCH]
            ]
            response = client.post(f"/v2/geosubmit?key={API_KEY}", json={"items": items})
            response.raise_for_status()


def drain(service: Service) -> None:
    """Run every pipeline stage until the queues are empty."""
    service.run("process", "--quiet")


def locate(service: Service, queries: Sequence[Query]) -> list[dict[str, Any]]:
    """The answer body of every query, in order (a position or an error body)."""
    answers: list[dict[str, Any]] = []
    with httpx.Client(base_url=service.url, timeout=300) as client:
        for start in range(0, len(queries), LOCATE_BATCH):
            chunk = queries[start : start + LOCATE_BATCH]
            response = client.post(
                f"/v1/geolocate/batch?key={API_KEY}",
                json={"queries": [query.body for query in chunk]},
            )
            response.raise_for_status()
            results = response.json()["results"]
            if len(results) != len(chunk):
                raise RuntimeError(f"{len(chunk)} queries, {len(results)} answers")
            answers.extend(results)
    return answers
