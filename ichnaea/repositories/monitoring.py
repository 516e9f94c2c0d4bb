"""SQL for the server's own health figures (the rate controller, the heartbeat)."""

from __future__ import annotations

import sqlalchemy
from sqlalchemy.exc import DBAPIError

from ichnaea.repositories.session import MYSQL_DIALECTS

HISTORY_LENGTH_SQL = (
    "SELECT count FROM information_schema.innodb_metrics WHERE name = 'trx_rseg_history_len'"
)
# ER_SPECIFIC_ACCESS_DENIED_ERROR: the account lacks the PROCESS privilege.
MYSQL_ACCESS_DENIED = 1227


def read_history_length(engine: sqlalchemy.Engine | None) -> int | None:
    """InnoDB's transaction history length, or None where there is none to read.

    None for SQLite, without an engine, when the server has no row for the
    metric, and when the account lacks the PROCESS privilege (MySQL error
    1227, expected on managed databases: skipped without a log line every
    minute). Any other database error propagates.
    """
    if engine is None or engine.dialect.name not in MYSQL_DIALECTS:
        return None
    try:
        with engine.connect() as connection:
            value = connection.execute(sqlalchemy.text(HISTORY_LENGTH_SQL)).scalar()
    except DBAPIError as exc:
        args = getattr(exc.orig, "args", ())
        if args and args[0] == MYSQL_ACCESS_DENIED:
            return None
        raise
    return None if value is None else int(value)


def read_replica_status(connection: sqlalchemy.Connection) -> dict[str, object] | None:
    """Whether the server replicates, and how far behind; None if it is no replica.

    ``{"running": bool, "lag_s": int | None}`` from ``SHOW SLAVE STATUS``
    (MariaDB's and MySQL's name for it); ``running`` is both replication
    threads up, ``lag_s`` the server's ``Seconds_Behind_Master`` (None while
    not replicating). ``{"running": None, "lag_s": None}`` when the account
    may not ask (the REPLICATION CLIENT or SLAVE MONITOR privilege).
    """
    if connection.dialect.name not in MYSQL_DIALECTS:
        return None
    try:
        row = connection.execute(sqlalchemy.text("SHOW SLAVE STATUS")).mappings().first()
    except DBAPIError as exc:
        args = getattr(exc.orig, "args", ())
        if args and args[0] == MYSQL_ACCESS_DENIED:
            return {"running": None, "lag_s": None}
        raise
    if row is None:
        return None
    running = row["Slave_IO_Running"] == "Yes" and row["Slave_SQL_Running"] == "Yes"
    lag = row["Seconds_Behind_Master"]
    return {"running": running, "lag_s": None if lag is None else int(lag)}
