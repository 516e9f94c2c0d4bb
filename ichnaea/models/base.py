"""The declarative base, the constraint naming convention and portable column types.

One ``MetaData`` serves MySQL/MariaDB (production) and SQLite (the embedded
single-host mode and tests). Column types are written once with
``with_variant`` so each backend gets its natural type: MySQL gets the exact
types of the original schema (``INT UNSIGNED``, ``TINYINT``, ``BINARY(n)``),
SQLite the generic type with the same storage class (``INTEGER`` affinity,
``BLOB``). Alembic's ``compare_metadata`` therefore sees no difference
between the models and a migrated database on either backend.

MySQL tables are InnoDB with the ``utf8mb4`` character set; every model
passes its indexes through :func:`table_args` to get these options.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BINARY,
    BigInteger,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeEngine

# Names for constraints the models do not name explicitly. Indexes and
# unique constraints from the original schema carry explicit names
# (``<table>_latlon_idx``, ``<table>_cellid_unique``) in the models.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "%(table_name)s_%(column_0_N_name)s_idx",
    "uq": "%(table_name)s_%(column_0_N_name)s_unique",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}

MYSQL_TABLE_OPTIONS: dict[str, str] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
}

_MYSQL = ("mysql", "mariadb")

# TINYINT (-128..127) on MySQL; SMALLINT (INTEGER affinity) on SQLite.
TinyInt: TypeEngine[int] = SmallInteger().with_variant(mysql.TINYINT(), *_MYSQL)
# TINYINT UNSIGNED (0..255).
TinyUnsigned: TypeEngine[int] = SmallInteger().with_variant(mysql.TINYINT(unsigned=True), *_MYSQL)
# SMALLINT UNSIGNED (0..65535).
SmallUnsigned: TypeEngine[int] = SmallInteger().with_variant(mysql.SMALLINT(unsigned=True), *_MYSQL)
# INT UNSIGNED (0..2^32-1).
IntUnsigned: TypeEngine[int] = Integer().with_variant(mysql.INTEGER(unsigned=True), *_MYSQL)
# BIGINT UNSIGNED on MySQL; BIGINT on SQLite, which stores at most 2^63-1.
BigUnsigned: TypeEngine[int] = BigInteger().with_variant(mysql.BIGINT(unsigned=True), *_MYSQL)


def fixed_binary(length: int) -> TypeEngine[bytes]:
    """``BINARY(length)`` on MySQL; ``BLOB`` on SQLite.

    SQLite has no fixed-length binary type: it would give a ``BINARY(n)``
    column NUMERIC affinity and reflect it as such.
    """
    return BINARY(length).with_variant(LargeBinary(), "sqlite")


def table_args(*items: Any) -> tuple[Any, ...]:
    """Return ``__table_args__``: the given indexes/constraints plus MySQL options."""
    return (*items, dict(MYSQL_TABLE_OPTIONS))


class Base(DeclarativeBase):
    """Declarative base of every table; its ``metadata`` is the schema."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
