"""Station and area scores: how much to trust a station's position.

A score is the product of three weights (spec locate.md 4.3):

* age: ``1 / sqrt(months since modified + 1)`` — 1.0 for fresh data,
  0.5 after three months, never 0;
* collection span: ``min(days between first and last sighting / 10, 1)`` —
  a station seen over ten days or more is fully trusted, one seen on a
  single day gets 0.1;
* samples: ``clamp(log2(samples), 0.5, 10)`` for stations (0.5 for one
  sample, 10 from 1024 samples), ``min(sqrt(num_cells), 10)`` for areas;
  a station or area with no radius counts as one sample.

So a station created today from one observation scores 0.05, and a
well-observed, recent station up to 10.

A station without ``modified`` (a cell imported from a CSV row with an
empty ``updated``) ages from its ``last_seen`` day, else its ``created``
day, else counts as fresh; one without ``created`` (an empty ``created``)
counts as collected over one day (weight 0.1). The original crashed on it; a NaN score made
a NaN position and a 500 here before (named in
``tests/api/locate/test_score.py``).

Dates are day numbers (``date.toordinal()``) and times are seconds, as
NumPy arrays, so a whole lookup result is scored in a few vector
operations; ``station_score``/``area_score`` are the scalar forms.
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
from numpy.typing import NDArray

Float = NDArray[np.float64]

SECONDS_PER_DAY = 86400.0


def _weights(now_s: float, modified_s: Float, last_day: Float, first_day: Float) -> Float:
    days_since = np.maximum(np.floor((now_s - modified_s) / SECONDS_PER_DAY), 0.0)
    months = np.floor(days_since / 30.0)
    age_weight = 1.0 / np.sqrt(months + 1.0)
    span_days = np.maximum(last_day - first_day, 1.0)
    collection_weight = np.minimum(span_days / 10.0, 1.0)
    result: Float = age_weight * collection_weight
    return result


def _known_modified_s(
    now_s: float, modified_s: Float, last_seen_day: Float, created_day: Float
) -> Float:
    """``modified_s``, with NULL (NaN) replaced by the start of ``last_seen``, else of
    ``created``, else ``now_s`` (module docstring)."""
    if not np.isnan(modified_s).any():
        return modified_s
    fallback_day = np.where(np.isnan(last_seen_day), created_day, last_seen_day)
    fallback_s = (fallback_day - _EPOCH_ORDINAL) * SECONDS_PER_DAY
    fallback_s = np.where(np.isnan(fallback_s), now_s, fallback_s)
    result: Float = np.where(np.isnan(modified_s), fallback_s, modified_s)
    return result


def station_scores(
    now_s: float,
    *,
    created_day: Float,
    modified_s: Float,
    last_seen_day: Float,
    block_last_day: Float,
    radius_m: Float,
    samples: Float,
) -> Float:
    """Scores of station rows; NaN marks a NULL in any column (see the module
    docstring for a NULL ``modified``).

    ``modified_s`` is seconds since the epoch (naive UTC), the ``*_day``
    arrays are proleptic Gregorian day numbers.
    """
    modified_s = _known_modified_s(now_s, modified_s, last_seen_day, created_day)
    modified_day = np.floor(modified_s / SECONDS_PER_DAY) + _EPOCH_ORDINAL
    last_day = np.fmax(modified_day, last_seen_day)
    first_day = np.fmax(created_day, block_last_day)
    # Neither created nor blocked known: a collection span of one day.
    first_day = np.where(np.isnan(first_day), last_day, first_day)
    # Quirk Q13, fixed: NULL samples count as none rather than crashing.
    s = np.nan_to_num(samples, nan=0.0)
    s = np.where((s > 1) & ~(np.nan_to_num(radius_m) > 0), 1.0, s)
    sample_weight = np.clip(np.log2(np.maximum(s, 1.0)), 0.5, 10.0)
    result: Float = _weights(now_s, modified_s, last_day, first_day) * sample_weight
    return result


def area_scores(
    now_s: float,
    *,
    created_day: Float,
    modified_s: Float,
    last_seen_day: Float,
    radius_m: Float,
    num_cells: Float,
) -> Float:
    """Scores of cell-area rows (see ``station_scores`` for the units and NULLs)."""
    modified_s = _known_modified_s(now_s, modified_s, last_seen_day, created_day)
    modified_day = np.floor(modified_s / SECONDS_PER_DAY) + _EPOCH_ORDINAL
    last_day = np.fmax(modified_day, last_seen_day)
    first_day = np.where(np.isnan(created_day), last_day, created_day)
    s = np.nan_to_num(num_cells, nan=0.0)
    s = np.where((s > 1) & ~(np.nan_to_num(radius_m) > 0), 1.0, s)
    sample_weight = np.minimum(np.sqrt(np.maximum(s, 1.0)), 10.0)
    result: Float = _weights(now_s, modified_s, last_day, first_day) * sample_weight
    return result


_EPOCH_ORDINAL = float(date(1970, 1, 1).toordinal())


def to_seconds(value: datetime) -> float:
    """Seconds since the epoch of a naive UTC datetime."""
    return (value - datetime(1970, 1, 1)).total_seconds()


def _day(value: date | None) -> float:
    return float(value.toordinal()) if value is not None else np.nan


def station_score(
    now: datetime,
    *,
    created: datetime,
    modified: datetime,
    radius_m: float | None,
    samples: int | None,
    block_last: date | None = None,
    last_seen: date | None = None,
) -> float:
    """The score of one station (naive UTC datetimes)."""
    return float(
        station_scores(
            to_seconds(now),
            created_day=np.array([_day(created.date())]),
            modified_s=np.array([to_seconds(modified)]),
            last_seen_day=np.array([_day(last_seen)]),
            block_last_day=np.array([_day(block_last)]),
            radius_m=np.array([np.nan if radius_m is None else radius_m], dtype=np.float64),
            samples=np.array([np.nan if samples is None else samples], dtype=np.float64),
        )[0]
    )


def area_score(
    now: datetime,
    *,
    created: datetime,
    modified: datetime,
    radius_m: float | None,
    num_cells: int | None,
    last_seen: date | None = None,
) -> float:
    """The score of one cell area (naive UTC datetimes)."""
    return float(
        area_scores(
            to_seconds(now),
            created_day=np.array([_day(created.date())]),
            modified_s=np.array([to_seconds(modified)]),
            last_seen_day=np.array([_day(last_seen)]),
            radius_m=np.array([np.nan if radius_m is None else radius_m], dtype=np.float64),
            num_cells=np.array([np.nan if num_cells is None else num_cells], dtype=np.float64),
        )[0]
    )
