"""One statement that inserts rows or overwrites them by primary key, on both backends.

MySQL/MariaDB get ``INSERT ... ON DUPLICATE KEY UPDATE col = VALUES(col)``,
SQLite ``INSERT ... ON CONFLICT (pk) DO UPDATE SET col = excluded.col``.
Executed with a list of row dicts (``connection.execute(stmt, rows)``), the
driver sends them as one multi-row statement (mysqlclient rewrites an
``INSERT`` executemany into one ``VALUES`` list; SQLite loops in C), so a
whole batch of station rows costs one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.sql.dml import Insert


def upsert(table: sa.Table, dialect_name: str, columns: Sequence[str]) -> Insert:
    """An upsert of ``columns`` (all non-key columns are overwritten on conflict)."""
    keys = [column.name for column in table.primary_key.columns]
    updated = [name for name in columns if name not in keys]
    if dialect_name in ("mysql", "mariadb"):
        my = mysql.insert(table)
        return my.on_duplicate_key_update({name: my.inserted[name] for name in updated})
    if dialect_name == "sqlite":
        lite = sqlite.insert(table)
        return lite.on_conflict_do_update(
            index_elements=keys, set_={name: lite.excluded[name] for name in updated}
        )
    raise ValueError(f"no upsert for the {dialect_name!r} dialect")
