"""Conversions of column values that the pipeline and the repositories share.

The database columns hold naive UTC datetimes to the second and plain
dates; NumPy kernels want NaN where a column is NULL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

NAN = float("nan")


def or_nan(value: float | None) -> float:
    """A nullable number column as a float: NULL is NaN."""
    return NAN if value is None else float(value)


def naive_utc(moment: datetime) -> datetime:
    """``moment`` in UTC without its zone, as the DATETIME columns hold it."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def utcnow() -> datetime:
    """Naive UTC now, to the second (the precision of the DATETIME columns)."""
    return datetime.now(UTC).replace(microsecond=0, tzinfo=None)


def as_date(value: date | str | None) -> date | None:
    """A DATE column as read raw: SQLite hands dates (and datetimes) back as ISO text."""
    return date.fromisoformat(value[:10]) if isinstance(value, str) else value
