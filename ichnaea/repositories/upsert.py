"""One statement that inserts rows or overwrites them by primary key, on both backends.

MySQL/MariaDB get ``INSERT ... ON DUPLICATE KEY UPDATE col = VALUES(col)``,
SQLite ``INSERT ... ON CONFLICT (pk) DO UPDATE SET col = excluded.col``.
Executed with a list of row dicts (``connection.execute(stmt, rows)``), the
driver sends them as one multi-row statement (mysqlclient rewrites an
``INSERT`` executemany into one ``VALUES`` list; SQLite loops in C), so a
whole batch of station rows costs one round trip.

The pipeline's other MySQL statements written as text (the station and
datamap reads, the datamap writes) take their key lists and their rows
from here too: :func:`binary_literals` and :func:`driver_rows`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.sql.dml import Insert

from ichnaea import _fast
from ichnaea.repositories.session import MYSQL_DIALECTS

# Text that is its own SQL literal between single quotes (region codes).
_SAFE_TEXT = re.compile(r"[A-Za-z0-9 _.-]{0,64}")


def upsert(table: sa.Table, dialect_name: str, columns: Sequence[str]) -> Insert:
    """An upsert of ``columns`` (all non-key columns are overwritten on conflict)."""
    keys = [column.name for column in table.primary_key.columns]
    updated = [name for name in columns if name not in keys]
    if dialect_name in MYSQL_DIALECTS:
        my = mysql.insert(table)
        return my.on_duplicate_key_update({name: my.inserted[name] for name in updated})
    if dialect_name == "sqlite":
        lite = sqlite.insert(table)
        return lite.on_conflict_do_update(
            index_elements=keys, set_={name: lite.excluded[name] for name in updated}
        )
    raise ValueError(f"no upsert for the {dialect_name!r} dialect")


def _float_literal(value: float) -> str:
    # The shortest text that reads back as the same double, as orjson writes it
    # (``1e-7``, ``1e+16``): the compiled path formats a batch's floats with one
    # orjson call, twenty times faster than ``repr`` of each.
    return orjson.dumps(value).decode() if math.isfinite(value) else "NULL"


def binary_literals(values: Sequence[bytes]) -> str:
    """``X'..',X'..'``: the literals of binary keys, for an ``IN (...)`` list."""
    return ",".join(f"X'{bytes(value).hex()}'" for value in values)


def driver_rows(conn: Connection, sql: str) -> Sequence[tuple[Any, ...]]:
    """The rows of ``sql`` as the driver's own tuples.

    Through SQLAlchemy (no parameters: the driver does no %-formatting), so
    errors arrive wrapped and the lock-retry and error events see them; but
    without its Row objects, which cost a wrapper each.
    """
    result = conn.exec_driver_sql(sql)
    try:
        rows: Sequence[tuple[Any, ...]] = result.cursor.fetchall()
    finally:
        result.close()
    return rows


def _text_literal(value: str) -> str:
    if _SAFE_TEXT.fullmatch(value):
        return f"'{value}'"
    raise TypeError(f"no fast literal for text {value!r}")


# One dict lookup per value on the hot path; subclasses (numpy scalars,
# bool) take the isinstance walk below.
_LITERALS: dict[type, Any] = {
    type(None): lambda value: "NULL",
    bytes: lambda value: f"X'{value.hex()}'",
    int: str,
    float: _float_literal,
    datetime: lambda value: f"'{value.isoformat(' ', 'seconds')}'",
    date: lambda value: f"'{value.isoformat()}'",
    str: _text_literal,
}


def _mysql_literal(value: object) -> str:
    """The SQL literal of a station-row value (bytes, numbers, dates, short ASCII codes)."""
    literal = _LITERALS.get(type(value))
    if literal is not None:
        return str(literal(value))
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return _float_literal(float(value))
    for kind in (datetime, date, bytes):
        if isinstance(value, kind):
            return str(_LITERALS[kind](value))
    raise TypeError(f"no fast literal for {type(value).__name__} value {value!r}")


def upsert_rows(
    conn: Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert or overwrite ``rows`` (dicts over ``columns``) in one statement."""
    upsert_values(conn, table, columns, [[row[c] for c in columns] for row in rows])


def mysql_values_text(values: Sequence[Sequence[Any]]) -> str:
    """The ``(v,...),(v,...)`` literals of ``values``: the specification of ``_fast.mysql_values``.

    Raises TypeError for a value outside bytes, numbers, dates and short codes.
    """
    return ",".join("(" + ",".join([_mysql_literal(v) for v in row]) + ")" for row in values)


def upsert_values(
    conn: Connection, table: sa.Table, columns: Sequence[str], values: Sequence[Sequence[Any]]
) -> None:
    """Insert or overwrite rows given as value sequences in ``columns`` order, in one statement.

    On MySQL/MariaDB the statement text is built here: the values of
    station rows are bytes, numbers, dates and two-letter codes, whose
    literals need no escaping. The compiled ``_fast.mysql_values`` formats
    plain values; the Python path takes the rest (booleans, NumPy
    scalars), and anything else (SQLite, or a value outside those types)
    goes through :func:`upsert`.
    """
    if not values:
        return
    name = conn.dialect.name
    if name in MYSQL_DIALECTS:
        try:
            text = _fast.mysql_values(values)
        except TypeError:
            try:
                text = mysql_values_text(values)
            except TypeError:
                text = ""
        if text:
            keys = {column.name for column in table.primary_key.columns}
            updates = ",".join(f"`{c}`=VALUES(`{c}`)" for c in columns if c not in keys)
            column_list = ",".join(f"`{c}`" for c in columns)
            sql = (
                f"INSERT INTO `{table.name}` ({column_list}) VALUES {text} "
                f"ON DUPLICATE KEY UPDATE {updates}"
            )
            # No parameters: the driver sends the text as it is (no
            # %-formatting), and SQLAlchemy still wraps its errors.
            conn.exec_driver_sql(sql)
            return
    rows = [dict(zip(columns, row, strict=True)) for row in values]
    conn.execute(upsert(table, name, columns), rows)
