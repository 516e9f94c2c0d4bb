"""Compare API keys as exact strings: api_key.valid_key gets a binary collation.

Revision ID: 9a09a49fd900
Revises: 9d3e6a1f4b27
Create Date: 2026-12-06 14:40:00+00:00

Keys are exact strings, but MySQL/MariaDB compared ``valid_key`` with the
table's case-insensitive default collation, so ``RELKEY`` found the row of
``relkey``. ``utf8mb4_bin`` keeps the character set (no data is converted)
and compares code points. SQLite compares TEXT with ``=`` case-sensitively
already, so nothing changes there. No other table references the column.

Expand/contract: only the comparison changes. The previous release reads
and writes the column with the same SQL and keeps working on this schema.
The downgrade refuses to run while two keys differ only in case (they
would collide in the primary key); it names them so one can be deleted.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9a09a49fd900"
down_revision: str | Sequence[str] | None = "9d3e6a1f4b27"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _is_mysql() -> bool:
    return op.get_bind().dialect.name in ("mysql", "mariadb")


def upgrade() -> None:
    if _is_mysql():
        op.execute(
            "ALTER TABLE api_key MODIFY valid_key "
            "VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL"
        )


def downgrade() -> None:
    if not _is_mysql():
        return
    bind = op.get_bind()
    collation = bind.execute(
        sa.text(
            "SELECT TABLE_COLLATION FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'api_key'"
        )
    ).scalar_one()
    if not str(collation).replace("_", "a").isalnum():
        raise RuntimeError(f"unexpected collation name of table api_key: {collation!r}")
    # Groups of keys the table's own collation would consider the same key.
    clashes = bind.execute(
        sa.text(
            "SELECT GROUP_CONCAT(valid_key ORDER BY valid_key SEPARATOR ', ') FROM api_key "
            f"GROUP BY valid_key COLLATE {collation} HAVING COUNT(*) > 1"
        )
    ).scalars()
    found = [str(group) for group in clashes]
    if found:
        raise RuntimeError(
            "cannot downgrade: these API keys differ only in case and would be one key "
            f"under {collation}; delete all but one of each: {'; '.join(found)}"
        )
    # Without CHARACTER SET/COLLATE the column takes the table's defaults again.
    op.execute("ALTER TABLE api_key MODIFY valid_key VARCHAR(40) NOT NULL")
