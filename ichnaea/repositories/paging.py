"""Keyset pagination: a table read in key order, one page of rows in memory at a time.

Each page is ``<query> AND key > :last ORDER BY key LIMIT :page_size``,
``:last`` being the key of the previous page's last row. Unlike ``OFFSET``,
which makes the server walk every row it skips again, every page costs the
same index range scan. The readers of whole tables (the public cell export,
the station dumps, the map tiles) page this way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine


def keyset_pages(
    bind: Engine | Connection,
    query: sa.Select[Any],
    key: sa.ColumnElement[Any],
    page_size: int,
) -> Iterator[Sequence[sa.Row[Any]]]:
    """The rows of ``query`` in ``key`` order, ``page_size`` at a time; no empty pages.

    ``key`` must be unique and ``query``'s first column. With an engine,
    each page is read on a connection of its own, checked out for that read
    only, so that a slow consumer holds neither a connection nor a
    transaction between pages; with a connection, every page is read on it.
    """
    base = query.order_by(key).limit(page_size)
    last: Any = None
    while True:
        page_query = base if last is None else base.where(key > last)
        if isinstance(bind, Engine):
            with bind.connect() as connection:
                rows = connection.execute(page_query).all()
        else:
            rows = bind.execute(page_query).all()
        if not rows:
            return
        yield rows
        if len(rows) < page_size:
            return
        last = rows[-1][0]
