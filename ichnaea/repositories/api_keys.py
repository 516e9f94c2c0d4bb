"""SQL for the ``api_key`` table.

Functions take the caller's session (or connection, where no ORM object
comes back) and never commit: the caller owns the transaction. Field names
are the column names of :class:`ichnaea.models.api_key.ApiKey`; an unknown
name raises an error from SQLAlchemy rather than being ignored.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, CursorResult, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ichnaea.models.api_key import ApiKey


def get_api_key(session: Session, key: str) -> ApiKey | None:
    """Return the row of exactly ``key`` (case-sensitive), or None if there is none."""
    row = _matching_row(session, key)
    # The schema compares keys exactly (migration 9a09a49fd900); until that
    # migration has run, MySQL's default collation matches any case, and a
    # web process of this release may already be serving.
    return row if row is not None and row.valid_key == key else None


def _matching_row(session: Session, key: str) -> ApiKey | None:
    """The row the database considers equal to ``key`` (under its collation)."""
    return session.scalar(select(ApiKey).where(ApiKey.valid_key == key))


def list_api_keys(session: Session) -> list[ApiKey]:
    """Return every API key, ordered by key."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.valid_key)))


def read_valid_keys(connection: Connection | Session) -> frozenset[str]:
    """Return the key string of every API key."""
    return frozenset(connection.execute(select(ApiKey.valid_key)).scalars())


def create_api_key(session: Session, *, valid_key: str, **fields: Any) -> bool:
    """Insert a key; return False (and change nothing) if it already exists.

    Columns not given get the model defaults of a new key (locate and region
    allowed, fallback denied, 100 % sampling).
    """
    if get_api_key(session, valid_key) is not None:
        return False
    try:
        # A savepoint, so that losing a race to a concurrent insert of the
        # same key leaves the caller's transaction usable.
        with session.begin_nested():
            session.execute(insert(ApiKey).values(valid_key=valid_key, **fields))
    except IntegrityError:
        if _matching_row(session, valid_key) is None:
            raise
        return False
    return True


def update_api_key(session: Session, key: str, **fields: Any) -> bool:
    """Set the given columns of ``key``; return False if the key does not exist."""
    if not fields:
        return get_api_key(session, key) is not None
    statement = update(ApiKey).where(ApiKey.valid_key == key).values(**fields)
    result = session.execute(statement, execution_options={"synchronize_session": "fetch"})
    return _rowcount(result) > 0


def delete_api_key(session: Session, key: str) -> bool:
    """Delete ``key``; return False if it did not exist."""
    statement = delete(ApiKey).where(ApiKey.valid_key == key)
    result = session.execute(statement, execution_options={"synchronize_session": "fetch"})
    return _rowcount(result) > 0


def _rowcount(result: Any) -> int:
    # Session.execute() is typed as returning Result; DML returns a
    # CursorResult. MySQL reports matched (not changed) rows because
    # SQLAlchemy connects with the FOUND_ROWS flag, so a no-op update counts.
    if not isinstance(result, CursorResult):
        raise TypeError(f"expected a CursorResult from a DML statement, got {type(result)!r}")
    return result.rowcount
