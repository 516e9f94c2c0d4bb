"""API keys and export configurations: the two operator-managed tables.

``api_key`` holds one row per client key (an exact, case-sensitive string)
with its permissions, daily limit, optional external fallback provider and
the sampling rates at which its queries and submissions are stored. The
Python-side defaults are those of a newly created key (``ichnaea apikey
create``): locate and region allowed, fallback denied, everything sampled at
100 %. A column left NULL means "denied" (``allow_*``) or "unlimited"
(``maxreq``) to the API layer.

``export_config`` lists the destinations incoming reports are fanned out to
(``internal`` feeds the station pipeline; ``geosubmit``, ``s3`` and
``dummy`` export elsewhere). The initial migration seeds the ``internal``
row. ``skip_keys`` and ``skip_sources`` are comma-joined sets.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from ichnaea.models.base import Base, TinyInt, table_args

# Keys are exact strings: a binary collation on MySQL/MariaDB, whose default
# one is case-insensitive. SQLite compares TEXT exactly already.
ExactKey = String(40).with_variant(
    mysql.VARCHAR(40, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
)


class ApiKey(Base):
    """One client API key and what it may do."""

    __tablename__ = "api_key"
    __table_args__ = table_args()

    valid_key: Mapped[str] = mapped_column(ExactKey, primary_key=True)
    # Daily requests per API path; 0 or NULL = unlimited.
    maxreq: Mapped[int | None] = mapped_column(Integer)
    allow_fallback: Mapped[bool | None] = mapped_column(Boolean, default=False)
    allow_locate: Mapped[bool | None] = mapped_column(Boolean, default=True)
    allow_region: Mapped[bool | None] = mapped_column(Boolean, default=True)
    fallback_name: Mapped[str | None] = mapped_column(String(40))
    # NULL, "ichnaea/v1", "combain/v1", "googlemaps/v1" or "unwiredlabs/v1".
    fallback_schema: Mapped[str | None] = mapped_column(String(64))
    fallback_url: Mapped[str | None] = mapped_column(String(256))
    # Requests per interval, and the interval in seconds.
    fallback_ratelimit: Mapped[int | None] = mapped_column(Integer)
    fallback_ratelimit_interval: Mapped[int | None] = mapped_column(Integer)
    fallback_cache_expire: Mapped[int | None] = mapped_column(Integer)
    # Percentages, 0..100.
    store_sample_locate: Mapped[int | None] = mapped_column(TinyInt, default=100)
    store_sample_submit: Mapped[int | None] = mapped_column(TinyInt, default=100)


class ExportConfig(Base):
    """One export destination for incoming reports."""

    __tablename__ = "export_config"
    __table_args__ = table_args()

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    # Reports per batch; 0 means "export everything, always ready".
    batch: Mapped[int] = mapped_column(Integer)
    # "internal", "geosubmit", "s3" or "dummy".
    schema: Mapped[str | None] = mapped_column(String(32))
    url: Mapped[str | None] = mapped_column(String(512))
    skip_keys: Mapped[str | None] = mapped_column(String(1024))
    skip_sources: Mapped[str | None] = mapped_column(String(64))
