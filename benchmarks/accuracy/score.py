"""Scoring answers against the truth: pure functions, no service.

For one query type, over its queries:

* ``n``: queries asked;
* ``found``: share answered with a position (an error body, ``notFound``
  included, is not found);
* ``median_m``, ``p90_m``: median and 90th percentile of the great-circle
  distance from the answer to the true point, over the answered queries
  (numpy's linear interpolation; ``None`` without answers);
* ``inside``: share of the answers whose ``accuracy`` radius holds the true
  point (distance <= accuracy);
* ``far_1km``: share of the answers more than 1 km from the truth (a stale
  position of a moved station shows here);
* ``lacf``: share of the answers that are cell-area fallbacks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

EARTH_RADIUS_M = 6_371_008.8
FAR_M = 1000.0


@dataclass(frozen=True)
class Outcome:
    """One query's answer measured against its truth."""

    kind: str
    found: bool
    error_m: float = math.nan
    accuracy_m: float = math.nan
    lacf: bool = False


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def outcome(kind: str, truth_deg: tuple[float, float], answer: dict[str, Any]) -> Outcome:
    """Measure one ``/v1/geolocate`` answer body against the true point."""
    location = answer.get("location")
    if location is None:
        return Outcome(kind, False)
    error = haversine_m(truth_deg[0], truth_deg[1], location["lat"], location["lng"])
    return Outcome(kind, True, error, float(answer["accuracy"]), answer.get("fallback") == "lacf")


def is_inside(o: Outcome) -> bool:
    return o.found and o.error_m <= o.accuracy_m


def percentile_m(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) of ``values``, None when empty."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q))


def summarise(outcomes: Iterable[Outcome]) -> dict[str, Any]:
    """The figures of the module docstring for one group of outcomes."""
    items = list(outcomes)
    answered = [o for o in items if o.found]
    errors = [o.error_m for o in answered]
    share = (lambda k: round(k / len(answered), 4)) if answered else (lambda k: None)
    return {
        "n": len(items),
        "found": round(len(answered) / len(items), 4) if items else None,
        "median_m": percentile_m(errors, 50),
        "p90_m": percentile_m(errors, 90),
        "inside": share(sum(is_inside(o) for o in answered)),
        "far_1km": share(sum(o.error_m > FAR_M for o in answered)),
        "lacf": share(sum(o.lacf for o in answered)),
    }


def by_kind(outcomes: Iterable[Outcome], kinds: Sequence[str]) -> dict[str, dict[str, Any]]:
    """:func:`summarise` per query type, in the order of ``kinds`` (empty ones left out)."""
    items = list(outcomes)
    return {
        kind: summarise(o for o in items if o.kind == kind)
        for kind in kinds
        if any(o.kind == kind for o in items)
    }
