"""SQL for the ``pipeline_batch`` ledger of committed batches.

A stage records a batch (:func:`record_batch`) in the transaction that
commits the batch's writes, with the Redis effects still to apply as JSON
text; a worker that resumes the batch after a crash asks for those effects
first (:func:`committed_effects`) and applies only them when the batch was
committed. See :class:`ichnaea.models.pipeline.PipelineBatch`.

Functions take the caller's connection and never commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy import Connection

from ichnaea.models.pipeline import PipelineBatch


def committed_effects(conn: Connection, batch_id: str) -> str | None:
    """The effects (JSON text) recorded with ``batch_id``; None: the batch was not committed."""
    effects: str | None = conn.execute(
        sa.select(PipelineBatch.effects).where(PipelineBatch.batch_id == batch_id)
    ).scalar()
    return effects


# Built once, on the table rather than the ORM class: every station batch
# records itself, and the ORM-enabled insert cost a few per cent of a
# worker's CPU in statement construction.
_RECORD = sa.insert(cast(sa.Table, PipelineBatch.__table__))


def record_batch(
    conn: Connection, *, batch_id: str, queue: str, effects: str, created: datetime
) -> None:
    """Record ``batch_id`` of ``queue`` as committed; a second record of the id fails
    (``IntegrityError``)."""
    conn.execute(
        _RECORD, {"batch_id": batch_id, "queue": queue, "effects": effects, "created": created}
    )


def delete_batches_before(conn: Connection, cutoff: datetime) -> int:
    """Delete the batches recorded before ``cutoff`` (naive UTC); return how many."""
    result = conn.execute(sa.delete(PipelineBatch).where(PipelineBatch.created < cutoff))
    return int(result.rowcount)
