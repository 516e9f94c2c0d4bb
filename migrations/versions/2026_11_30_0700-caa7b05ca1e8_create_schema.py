"""Create the schema: stations, cells, areas, API keys, exports, statistics, datamap.

Revision ID: caa7b05ca1e8
Revises:
Create Date: 2026-11-30 07:00:00+00:00

The starting point of this implementation. It creates the schema the
original service reached at its last migration, plus ``cell_nr`` for 5G NR
cells (24-bit TAC in ``lac``, 36-bit NCI in ``cid``, 17-byte ``cellid``),
and seeds the ``internal`` export configuration.

Self-contained on purpose: it repeats the column types instead of importing
``ichnaea.models``, which describe the newest schema, not this one. Types
are written once for both backends: MySQL/MariaDB get the original types
(``INT UNSIGNED``, ``TINYINT``, ``BINARY(n)``), SQLite the generic types
with the same storage class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "caa7b05ca1e8"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MYSQL = ("mysql", "mariadb")
TABLE_OPTIONS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}

TINYINT = sa.SmallInteger().with_variant(mysql.TINYINT(), *_MYSQL)
TINYINT_UNSIGNED = sa.SmallInteger().with_variant(mysql.TINYINT(unsigned=True), *_MYSQL)
SMALLINT_UNSIGNED = sa.SmallInteger().with_variant(mysql.SMALLINT(unsigned=True), *_MYSQL)
INT_UNSIGNED = sa.Integer().with_variant(mysql.INTEGER(unsigned=True), *_MYSQL)
BIGINT_UNSIGNED = sa.BigInteger().with_variant(mysql.BIGINT(unsigned=True), *_MYSQL)

MAC_SHARD_IDS = "0123456789abcdef"
DATAMAP_SHARD_IDS = ("ne", "nw", "se", "sw")
# table -> (cellid bytes, lac type, cid type)
CELL_TABLES = {
    "cell_gsm": (11, SMALLINT_UNSIGNED, INT_UNSIGNED),
    "cell_wcdma": (11, SMALLINT_UNSIGNED, INT_UNSIGNED),
    "cell_lte": (11, SMALLINT_UNSIGNED, INT_UNSIGNED),
    "cell_nr": (17, INT_UNSIGNED, BIGINT_UNSIGNED),
}


def _binary(length: int) -> sa.types.TypeEngine[bytes]:
    # SQLite has no BINARY(n); it would reflect as NUMERIC.
    return sa.BINARY(length).with_variant(sa.LargeBinary(), "sqlite")


def _station_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("lat", sa.Double(), nullable=True),
        sa.Column("lon", sa.Double(), nullable=True),
        sa.Column("max_lat", sa.Double(), nullable=True),
        sa.Column("min_lat", sa.Double(), nullable=True),
        sa.Column("max_lon", sa.Double(), nullable=True),
        sa.Column("min_lon", sa.Double(), nullable=True),
        sa.Column("radius", INT_UNSIGNED, nullable=True),
        sa.Column("region", sa.String(2), nullable=True),
        sa.Column("samples", INT_UNSIGNED, nullable=True),
        sa.Column("source", TINYINT, nullable=True),
        sa.Column("weight", sa.Double(), nullable=True),
        sa.Column("created", sa.DateTime(), nullable=True),
        sa.Column("modified", sa.DateTime(), nullable=True),
        sa.Column("last_seen", sa.Date(), nullable=True),
        sa.Column("block_first", sa.Date(), nullable=True),
        sa.Column("block_last", sa.Date(), nullable=True),
        sa.Column("block_count", TINYINT_UNSIGNED, nullable=True),
    ]


def _create_timestamp_position_indexes(table: str) -> None:
    op.create_index(f"{table}_created_idx", table, ["created"])
    op.create_index(f"{table}_modified_idx", table, ["modified"])
    op.create_index(f"{table}_latlon_idx", table, ["lat", "lon"])


def _create_mac_station_table(table: str) -> None:
    op.create_table(
        table,
        sa.Column("mac", _binary(6), nullable=False),
        *_station_columns(),
        sa.PrimaryKeyConstraint("mac", name=f"{table}_pkey"),
        **TABLE_OPTIONS,
    )
    op.create_index(f"{table}_region_idx", table, ["region"])
    _create_timestamp_position_indexes(table)


def _create_cell_table(
    table: str,
    cellid_bytes: int,
    lac_type: sa.types.TypeEngine[int],
    cid_type: sa.types.TypeEngine[int],
) -> None:
    op.create_table(
        table,
        sa.Column("cellid", _binary(cellid_bytes), nullable=False),
        sa.Column("radio", TINYINT, nullable=False),
        sa.Column("mcc", sa.SmallInteger(), nullable=False),
        sa.Column("mnc", sa.SmallInteger(), nullable=False),
        sa.Column("lac", lac_type, nullable=False),
        sa.Column("cid", cid_type, nullable=False),
        sa.Column("psc", sa.SmallInteger(), nullable=True),
        *_station_columns(),
        sa.PrimaryKeyConstraint("cellid", name=f"{table}_pkey"),
        sa.UniqueConstraint("radio", "mcc", "mnc", "lac", "cid", name=f"{table}_cellid_unique"),
        **TABLE_OPTIONS,
    )
    op.create_index(f"{table}_region_idx", table, ["region"])
    _create_timestamp_position_indexes(table)


def _create_cell_area_table() -> None:
    op.create_table(
        "cell_area",
        sa.Column("areaid", _binary(7), nullable=False),
        sa.Column("radio", TINYINT, nullable=False),
        sa.Column("mcc", sa.SmallInteger(), nullable=False),
        sa.Column("mnc", sa.SmallInteger(), nullable=False),
        sa.Column("lac", SMALLINT_UNSIGNED, nullable=False),
        sa.Column("lat", sa.Double(), nullable=True),
        sa.Column("lon", sa.Double(), nullable=True),
        sa.Column("radius", sa.Integer(), nullable=True),
        sa.Column("region", sa.String(2), nullable=True),
        sa.Column("avg_cell_radius", INT_UNSIGNED, nullable=True),
        sa.Column("num_cells", INT_UNSIGNED, nullable=True),
        sa.Column("created", sa.DateTime(), nullable=True),
        sa.Column("modified", sa.DateTime(), nullable=True),
        sa.Column("last_seen", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("areaid", name="cell_area_pkey"),
        sa.UniqueConstraint("radio", "mcc", "mnc", "lac", name="cell_area_areaid_unique"),
        **TABLE_OPTIONS,
    )
    op.create_index("cell_area_region_radio_idx", "cell_area", ["region", "radio"])
    _create_timestamp_position_indexes("cell_area")


def _create_datamap_table(table: str) -> None:
    op.create_table(
        table,
        sa.Column("grid", _binary(8), nullable=False),
        sa.Column("created", sa.Date(), nullable=True),
        sa.Column("modified", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("grid", name=f"{table}_pkey"),
        **TABLE_OPTIONS,
    )
    op.create_index(f"{table}_created_idx", table, ["created"])
    op.create_index(f"{table}_modified_idx", table, ["modified"])


def _create_api_key_table() -> None:
    op.create_table(
        "api_key",
        sa.Column("valid_key", sa.String(40), nullable=False),
        sa.Column("maxreq", sa.Integer(), nullable=True),
        sa.Column("allow_fallback", sa.Boolean(), nullable=True),
        sa.Column("allow_locate", sa.Boolean(), nullable=True),
        sa.Column("allow_region", sa.Boolean(), nullable=True),
        sa.Column("fallback_name", sa.String(40), nullable=True),
        sa.Column("fallback_schema", sa.String(64), nullable=True),
        sa.Column("fallback_url", sa.String(256), nullable=True),
        sa.Column("fallback_ratelimit", sa.Integer(), nullable=True),
        sa.Column("fallback_ratelimit_interval", sa.Integer(), nullable=True),
        sa.Column("fallback_cache_expire", sa.Integer(), nullable=True),
        sa.Column("store_sample_locate", TINYINT, nullable=True),
        sa.Column("store_sample_submit", TINYINT, nullable=True),
        sa.PrimaryKeyConstraint("valid_key", name="api_key_pkey"),
        **TABLE_OPTIONS,
    )


def _create_export_config_table() -> None:
    export_config = op.create_table(
        "export_config",
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("schema", sa.String(32), nullable=True),
        sa.Column("url", sa.String(512), nullable=True),
        sa.Column("skip_keys", sa.String(1024), nullable=True),
        sa.Column("skip_sources", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("name", name="export_config_pkey"),
        **TABLE_OPTIONS,
    )
    op.bulk_insert(export_config, [{"name": "internal", "batch": 100, "schema": "internal"}])


def _create_stat_tables() -> None:
    op.create_table(
        "stat",
        sa.Column("key", TINYINT, nullable=False, autoincrement=False),
        sa.Column("time", sa.Date(), nullable=False),
        sa.Column("value", BIGINT_UNSIGNED, nullable=True),
        sa.PrimaryKeyConstraint("key", "time", name="stat_pkey"),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "region_stat",
        sa.Column("region", sa.String(2), nullable=False),
        sa.Column("gsm", INT_UNSIGNED, nullable=True),
        sa.Column("wcdma", INT_UNSIGNED, nullable=True),
        sa.Column("lte", INT_UNSIGNED, nullable=True),
        sa.Column("blue", BIGINT_UNSIGNED, nullable=True),
        sa.Column("wifi", BIGINT_UNSIGNED, nullable=True),
        sa.PrimaryKeyConstraint("region", name="region_stat_pkey"),
        **TABLE_OPTIONS,
    )


def _all_tables() -> list[str]:
    return [
        *(f"wifi_shard_{shard}" for shard in MAC_SHARD_IDS),
        *(f"blue_shard_{shard}" for shard in MAC_SHARD_IDS),
        *CELL_TABLES,
        "cell_area",
        *(f"datamap_{shard}" for shard in DATAMAP_SHARD_IDS),
        "api_key",
        "export_config",
        "stat",
        "region_stat",
    ]


def upgrade() -> None:
    for shard in MAC_SHARD_IDS:
        _create_mac_station_table(f"wifi_shard_{shard}")
    for shard in MAC_SHARD_IDS:
        _create_mac_station_table(f"blue_shard_{shard}")
    for table, (cellid_bytes, lac_type, cid_type) in CELL_TABLES.items():
        _create_cell_table(table, cellid_bytes, lac_type, cid_type)
    _create_cell_area_table()
    for shard in DATAMAP_SHARD_IDS:
        _create_datamap_table(f"datamap_{shard}")
    _create_api_key_table()
    _create_export_config_table()
    _create_stat_tables()


def downgrade() -> None:
    for table in reversed(_all_tables()):
        op.drop_table(table)
