"""Add pipeline_batch: the ledger of committed queue batches.

Revision ID: 5b1f0c7d2e41
Revises: caa7b05ca1e8
Create Date: 2026-11-30 09:30:00+00:00

Database stages of the pipeline record each committed batch here in the
same transaction as their writes, so a batch retried after a worker crash
is never applied twice (see ``ichnaea.models.pipeline``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b1f0c7d2e41"
down_revision: str | Sequence[str] | None = "caa7b05ca1e8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pipeline_batch",
        sa.Column("batch_id", sa.String(128), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("effects", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("batch_id", name="pipeline_batch_pkey"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.create_index("pipeline_batch_created_idx", "pipeline_batch", ["created"])


def downgrade() -> None:
    op.drop_index("pipeline_batch_created_idx", table_name="pipeline_batch")
    op.drop_table("pipeline_batch")
