"""Bookkeeping of the data pipeline.

``pipeline_batch`` records each queue batch whose database writes were
committed, in the same transaction as those writes, together with the
Redis side effects the batch still has to apply when it is acknowledged
(stat counter increments, cell areas to refresh). A batch handed to
another worker after a crash (see :class:`ichnaea.broker.reliable.SerialQueue`)
is looked up here first: if it was committed, only its effects are applied,
so no observation is ever counted twice. Rows are deleted after a week.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ichnaea.models.base import Base, table_args


class PipelineBatch(Base):
    """A committed batch: its id, queue, pending Redis effects (JSON) and commit time."""

    __tablename__ = "pipeline_batch"
    __table_args__ = table_args(Index("pipeline_batch_created_idx", "created"))

    batch_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), nullable=False)
    effects: Mapped[str] = mapped_column(Text, nullable=False)
    created: Mapped[datetime] = mapped_column(DateTime, nullable=False)
