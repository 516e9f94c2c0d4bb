"""The ``update_incoming`` multiplexer: copy each report to every export queue that wants it.

A batch of queued reports is claimed from ``update_incoming`` (reliably:
see ``ichnaea.reliable_queue``), and every report goes to each
``export_config`` whose ``skip_keys`` and ``skip_sources`` do not exclude
it. Export items are ``{"api_key": ..., "report": ...}``; the queue is
``queue_export_<name>``, or for the ``s3`` schema one queue per source and
key, ``queue_export_<name>:<source>:<api_key or no_key>``, so the S3
exporter can name objects by them. Data is thus duplicated per target.

The batch is acknowledged only after every export queue has its copy, in
one Redis transaction. A crash in between makes the batch come back and be
routed again: export queues may then hold a report twice, never zero times.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy.orm import Session

from ichnaea.queue import INCOMING_QUEUE, decode_item, encode_item
from ichnaea.reliable_queue import ReliableQueue
from ichnaea.repositories.export_configs import list_export_configs

log = logging.getLogger(__name__)

INCOMING_BATCH = 5000


@dataclass(frozen=True, slots=True)
class ExportTarget:
    """The routing part of an ``export_config`` row."""

    name: str
    schema: str
    skip_keys: frozenset[str]
    skip_sources: frozenset[str]

    @classmethod
    def from_row(cls, row: Any) -> ExportTarget:
        def split(text: str | None) -> frozenset[str]:
            return frozenset(part for part in (text or "").split(",") if part)

        return cls(row.name, row.schema or "", split(row.skip_keys), split(row.skip_sources))

    def wants(self, api_key: str | None, source: str) -> bool:
        return (api_key is None or api_key not in self.skip_keys) and (
            source not in self.skip_sources
        )

    def queue_key(self, api_key: str | None, source: str) -> str:
        if self.schema == "s3":
            return f"queue_export_{self.name}:{source}:{api_key or 'no_key'}"
        return f"queue_export_{self.name}"


def load_targets(session: Session) -> list[ExportTarget]:
    """Every export destination, read fresh (operators change them at run time)."""
    return [ExportTarget.from_row(row) for row in list_export_configs(session)]


def route(
    items: Iterable[dict[str, Any]], targets: Sequence[ExportTarget]
) -> dict[str, list[dict[str, Any]]]:
    """Export queue key → the export items it receives, in input order."""
    routed: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        api_key = item.get("api_key") or None
        source = item.get("source") or "gnss"
        export_item = {"api_key": api_key, "report": item.get("report")}
        for target in targets:
            if target.wants(api_key, source):
                routed.setdefault(target.queue_key(api_key, source), []).append(export_item)
    return routed


def process_incoming(
    client: redis.Redis,
    targets: Sequence[ExportTarget],
    *,
    consumer: str,
    batch: int = INCOMING_BATCH,
) -> int:
    """Route one claimed batch; return how many queued items it held (0: queue empty)."""
    queue = ReliableQueue(client, INCOMING_QUEUE)
    raw_items = queue.claim(consumer, batch)
    if not raw_items:
        return 0
    items = []
    for raw in raw_items:
        try:
            items.append(decode_item(raw))
        except (OSError, EOFError, ValueError) as exc:
            # Not ours to judge further: keep the bytes for an operator.
            log.error("undecodable item in %s moved aside: %s", INCOMING_QUEUE, exc)
            client.rpush(f"{INCOMING_QUEUE}:undecodable", raw)
    with client.pipeline(transaction=True) as pipe:
        for key, export_items in route(items, targets).items():
            pipe.rpush(key, *(encode_item(item) for item in export_items))
        pipe.execute()
    queue.ack(consumer)
    return len(raw_items)
