"""Add cell_area_nr: 5G NR tracking areas with their 24-bit TAC.

Revision ID: 9d3e6a1f4b27
Revises: 5b1f0c7d2e41
Create Date: 2026-11-30 12:40:00+00:00

``cell_area`` keeps the original 7-byte key and 16-bit LAC; NR areas get
their own table with a 9-byte key (``!bHHI``: radio, mcc, mnc, 32-bit TAC)
and an INT UNSIGNED ``lac``. NR areas that earlier code stored in
``cell_area`` (those with a TAC below 65536) move over with re-encoded keys.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "9d3e6a1f4b27"
down_revision: str | Sequence[str] | None = "5b1f0c7d2e41"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MYSQL = ("mysql", "mariadb")
TINYINT = sa.SmallInteger().with_variant(mysql.TINYINT(), *_MYSQL)
INT_UNSIGNED = sa.Integer().with_variant(mysql.INTEGER(unsigned=True), *_MYSQL)
NR = 4
TABLE = "cell_area_nr"
COLUMNS = (
    "areaid",
    "lac",
    "radio",
    "mcc",
    "mnc",
    "lat",
    "lon",
    "radius",
    "region",
    "avg_cell_radius",
    "num_cells",
    "created",
    "modified",
    "last_seen",
)


def _binary(length: int) -> sa.types.TypeEngine[bytes]:
    return sa.BINARY(length).with_variant(sa.LargeBinary(), "sqlite")


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("areaid", _binary(9), nullable=False),
        sa.Column("radio", TINYINT, nullable=False),
        sa.Column("mcc", sa.SmallInteger(), nullable=False),
        sa.Column("mnc", sa.SmallInteger(), nullable=False),
        sa.Column("lac", INT_UNSIGNED, nullable=False),
        sa.Column("lat", sa.Double(), nullable=True),
        sa.Column("lon", sa.Double(), nullable=True),
        sa.Column("radius", sa.Integer(), nullable=True),
        sa.Column("region", sa.String(2), nullable=True),
        sa.Column("avg_cell_radius", INT_UNSIGNED, nullable=True),
        sa.Column("num_cells", INT_UNSIGNED, nullable=True),
        sa.Column("created", sa.DateTime(), nullable=True),
        sa.Column("modified", sa.DateTime(), nullable=True),
        sa.Column("last_seen", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("areaid", name=f"{TABLE}_pkey"),
        sa.UniqueConstraint("radio", "mcc", "mnc", "lac", name=f"{TABLE}_areaid_unique"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.create_index(f"{TABLE}_region_radio_idx", TABLE, ["region", "radio"])
    op.create_index(f"{TABLE}_created_idx", TABLE, ["created"])
    op.create_index(f"{TABLE}_modified_idx", TABLE, ["modified"])
    op.create_index(f"{TABLE}_latlon_idx", TABLE, ["lat", "lon"])

    connection = op.get_bind()
    old = sa.table("cell_area", *(sa.column(name) for name in COLUMNS))
    new = sa.table(TABLE, *(sa.column(name) for name in COLUMNS))
    rows: list[dict[str, Any]] = [
        dict(row) for row in connection.execute(sa.select(old).where(old.c.radio == NR)).mappings()
    ]
    for row in rows:
        row["areaid"] = struct.pack("!bHHI", NR, row["mcc"], row["mnc"], row["lac"])
    if rows:
        connection.execute(sa.insert(new), rows)
        connection.execute(sa.delete(old).where(old.c.radio == NR))


def downgrade() -> None:
    connection = op.get_bind()
    old = sa.table("cell_area", *(sa.column(name) for name in COLUMNS))
    new = sa.table(TABLE, *(sa.column(name) for name in COLUMNS))
    # Only the areas the 7-byte key can hold go back.
    rows = [
        dict(row) for row in connection.execute(sa.select(new).where(new.c.lac <= 65535)).mappings()
    ]
    for row in rows:
        row["areaid"] = struct.pack("!bHHH", NR, row["mcc"], row["mnc"], row["lac"])
    if rows:
        connection.execute(sa.insert(old), rows)
    op.drop_table(TABLE)
