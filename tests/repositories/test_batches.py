"""The ``pipeline_batch`` ledger, on MariaDB and SQLite."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ichnaea.repositories.batches import committed_effects, delete_batches_before, record_batch

NOW = datetime(2026, 12, 6, 12, 0, 0)


def test_recorded_batch_returns_its_effects(db_session: Session) -> None:
    conn = db_session.connection()
    assert committed_effects(conn, "b-1") is None
    record_batch(conn, batch_id="b-1", queue="update_cell_gsm", effects='{"day": 1}', created=NOW)
    assert committed_effects(conn, "b-1") == '{"day": 1}'
    assert committed_effects(conn, "b-2") is None


def test_a_batch_is_recorded_only_once(db_session: Session) -> None:
    conn = db_session.connection()
    record_batch(conn, batch_id="b-1", queue="update_cell_gsm", effects="{}", created=NOW)
    with pytest.raises(IntegrityError):
        record_batch(conn, batch_id="b-1", queue="update_cell_gsm", effects="{}", created=NOW)


def test_batches_recorded_before_the_cutoff_are_deleted(db_session: Session) -> None:
    conn = db_session.connection()
    for name, days in (("old", 8), ("edge", 7), ("new", 0)):
        record_batch(conn, batch_id=name, queue="q", effects="{}", created=NOW - timedelta(days))
    assert delete_batches_before(conn, NOW - timedelta(days=7)) == 1
    assert [committed_effects(conn, name) for name in ("old", "edge", "new")] == [None, "{}", "{}"]
