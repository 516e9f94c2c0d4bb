"""Retry a database transaction that lost a lock conflict.

Pipeline stages update rows that other workers may be updating at the same
moment (two cell batches touching one area, two datamap batches with the
same grid cell). The database then aborts one of the transactions, and the
right reaction is to run the whole transaction again after a short pause:

* MySQL/MariaDB error 1213 (``ER_LOCK_DEADLOCK``): InnoDB found a deadlock
  and rolled our transaction back.
* MySQL/MariaDB error 1205 (``ER_LOCK_WAIT_TIMEOUT``): we waited longer than
  ``innodb_lock_wait_timeout`` for a row lock.
* SQLite ``database is locked`` (``SQLITE_BUSY``) and ``database table is
  locked`` (``SQLITE_LOCKED``): another connection held the write lock for
  longer than the busy timeout.

:func:`with_lock_retry` calls a function that runs one complete transaction
(it must open and commit its own, so a retry starts from scratch). On a lock
error it counts the metric (``data.station.dberror`` unless told otherwise)
with the caller's tags plus ``errno`` (``1213``, ``1205``, ``sqlite_busy``
or ``sqlite_locked``), sleeps and tries again, up to ``attempts`` calls in
all; the last lock error is re-raised. Any other error propagates at once.

The pause is exponential backoff with full jitter: before retry ``n``
(``n`` = 1, 2, ...) it is uniform in ``[0, base_delay_s · 2^(n-1)]``, so
workers that collided once spread out instead of colliding again in step.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from ichnaea.metrics import Metrics

log = logging.getLogger(__name__)

T = TypeVar("T")

MYSQL_LOCK_DEADLOCK = 1213
MYSQL_LOCK_WAIT_TIMEOUT = 1205
_MYSQL_LOCK_ERRNOS = frozenset({MYSQL_LOCK_DEADLOCK, MYSQL_LOCK_WAIT_TIMEOUT})
# sqlite3 error messages of SQLITE_BUSY and SQLITE_LOCKED.
_SQLITE_LOCK_MESSAGES = {
    "database is locked": "sqlite_busy",
    "database table is locked": "sqlite_locked",
}

DEFAULT_ATTEMPTS = 3
DEFAULT_BASE_DELAY_S = 0.1


def lock_error_code(exc: BaseException | None) -> str | None:
    """The ``errno`` tag of a lock conflict, or None for any other error.

    ``exc`` is what SQLAlchemy raised; the driver's own exception is
    ``exc.orig``. mysqlclient puts the server error number in ``args[0]``;
    sqlite3 has only the message to go by on every supported Python.
    """
    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        message = str(orig.args[0]) if orig.args else ""
        return _SQLITE_LOCK_MESSAGES.get(message.split(":", 1)[0].strip())
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL_LOCK_ERRNOS:
        return str(args[0])
    return None


def with_lock_retry(
    fn: Callable[[], T],
    *,
    metrics: Metrics,
    tags: Mapping[str, str],
    metric: str = "data.station.dberror",
    attempts: int = DEFAULT_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
    base_delay_s: float = DEFAULT_BASE_DELAY_S,
) -> T:
    """Return ``fn()``, calling it again after lock conflicts (see the module docstring).

    ``fn`` must run one whole transaction. ``attempts`` is the total number
    of calls (at least 1); ``sleep`` is injectable so tests need not wait.
    The loop is tenacity's: full-jitter backoff is its ``wait_random_exponential``.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    if base_delay_s < 0:
        raise ValueError(f"base_delay_s must not be negative, got {base_delay_s}")

    def code_of(state: RetryCallState) -> str:
        assert state.outcome is not None
        return lock_error_code(state.outcome.exception()) or ""

    def count(state: RetryCallState) -> None:  # every lock conflict, the last one too
        metrics.incr(metric, tags={**tags, "errno": code_of(state)})

    def note(state: RetryCallState) -> None:
        delay_s = state.next_action.sleep if state.next_action else 0.0
        log.info(
            "lock conflict (%s) on attempt %d of %d, retrying in %.3f s",
            code_of(state),
            state.attempt_number,
            attempts,
            delay_s,
        )

    retrying = Retrying(
        retry=retry_if_exception(lambda exc: lock_error_code(exc) is not None),
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=base_delay_s),
        sleep=sleep,
        after=count,
        before_sleep=note,
        reraise=True,
    )
    return retrying(fn)
