"""Whether the database driver a URL needs can be imported, without importing SQLAlchemy.

Every role checks its URLs before it starts (:func:`ichnaea.cli.common.start_role`),
including the worker pool's supervisor, which never opens a connection:
this module keeps SQLAlchemy out of it (a fifth of a second of start-up
CPU). :mod:`ichnaea.repositories.session` re-exports all of it.
"""

from __future__ import annotations

import importlib
from typing import Any

MYSQL_DIALECTS = ("mysql", "mariadb")
MYSQL_DRIVER_HINT = (
    "run `make install-mysql` in the checkout, or install the MariaDB client headers "
    "(.ci/ensure-mysql-headers) and `pip install 'ichnaea[mysql]'`"
)


class MissingDriverError(RuntimeError):
    """The database driver a URL needs is not installed."""


def backend_name(url: Any) -> str:
    """The backend of a database URL, text or SQLAlchemy ``URL``: ``mysql`` for
    ``mysql+mysqldb://...``."""
    text = url if isinstance(url, str) else url.render_as_string(hide_password=True)
    return text.partition(":")[0].partition("+")[0]


def require_driver(url: Any) -> None:
    """Raise :class:`MissingDriverError` if the driver ``url`` needs cannot be imported."""
    if backend_name(url) not in MYSQL_DIALECTS:
        return
    try:
        importlib.import_module("MySQLdb")
    except ImportError as exc:
        # Also the case of a driver built against a client library that is gone.
        raise MissingDriverError(
            f"MySQL/MariaDB URLs need the mysqlclient driver, which cannot be imported "
            f"({exc}): {MYSQL_DRIVER_HINT}"
        ) from exc
