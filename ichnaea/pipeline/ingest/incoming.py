"""The ``update_incoming`` multiplexer: copy each report to every export queue that wants it.

A batch of queued reports is claimed from ``update_incoming`` (reliably:
see ``ichnaea.broker.reliable``), and every report goes to each
``export_config`` whose ``skip_keys`` and ``skip_sources`` do not exclude
it. Export items are the queued items themselves, bytes unchanged
(``{"api_key": ..., "source": ..., "report": ...}``; exporters read the
key and the report): nothing is decoded twice or re-encoded. The queue is
``queue_export_<name>``, or for the ``s3`` schema one queue per source and
key, ``queue_export_<name>:<source>:<api_key or no_key>``, so the S3
exporter can name objects by them. Data is thus duplicated per target.

Wi-Fi networks that opt out of mapping (``_nomap``, ``_optout``; see
``ichnaea.privacy``) are removed from each report before it is copied, so
no export or archive receives them whoever queued the report (the submit
API already drops them; a locate query report, an older web process or a
script may not have). Only such changed items are re-encoded, and an item
left without any network is not passed on.

The copies are pushed in the same Redis transaction that acknowledges the
claimed batch, so each report reaches each export queue exactly once: a
crash before that transaction leaves the batch to be reclaimed whole.
Partitioned targets (``s3``, ``file``) also record their partition queues
in ``export_partitions:<name>``, and every export queue gets a
``<queue>:since`` timestamp so a half-full batch is flushed after a while.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.client import Pipeline
from sqlalchemy.orm import Session

from ichnaea.broker import keyspace
from ichnaea.broker.client import decoded
from ichnaea.broker.queue import decode_object, encode_item
from ichnaea.broker.reliable import LEASE_S, ReliableQueue
from ichnaea.pipeline.runner import Claimed, Done, run_batch
from ichnaea.privacy import strip_opted_out
from ichnaea.repositories.export_configs import list_export_configs

log = logging.getLogger(__name__)

INCOMING_BATCH = 5000
PARTITIONED_SCHEMAS = frozenset({"s3", "file"})
# Schemas some stage drains. A row with any other schema gets nothing: the
# original filled its queue forever (spec section 24, item 12).
KNOWN_SCHEMAS = frozenset({"internal", "dummy", "geosubmit", "s3", "file"})
NETWORK_LISTS = ("bluetoothBeacons", "cellTowers", "wifiAccessPoints")


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

    @property
    def partitioned(self) -> bool:
        """Archives (``s3``, ``file``) get one queue per source and API key."""
        return self.schema in PARTITIONED_SCHEMAS

    @property
    def base_queue(self) -> str:
        return keyspace.export_queue(self.name)

    def queue_key(self, api_key: str | None, source: str) -> str:
        if self.partitioned:
            return keyspace.export_partition(self.name, source, api_key)
        return self.base_queue

    def queues(self, client: redis.Redis) -> list[str]:
        """Every queue of this target: the one queue, or the known partitions."""
        if not self.partitioned:
            return [self.base_queue]
        members = client.smembers(keyspace.export_partitions(self.name))
        return sorted(decoded(m) for m in members)


def load_targets(session: Session) -> list[ExportTarget]:
    """Every export destination, read fresh (operators change them at run time)."""
    return [ExportTarget.from_row(row) for row in list_export_configs(session)]


_warned: set[tuple[str, str]] = set()


def routable(targets: Sequence[ExportTarget]) -> list[ExportTarget]:
    """The targets with a schema some stage drains; the others are logged once and skipped."""
    known = []
    for target in targets:
        if target.schema in KNOWN_SCHEMAS:
            known.append(target)
        elif (target.name, target.schema) not in _warned:
            _warned.add((target.name, target.schema))
            log.error(
                "export_config %r has unknown schema %r: no reports are queued for it",
                target.name,
                target.schema,
            )
    return known


def route(items: Sequence[dict[str, Any]], targets: Sequence[ExportTarget]) -> dict[str, list[int]]:
    """Export queue key → the indices of the items it receives, in input order."""
    routed: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        api_key = item.get("api_key") or None
        source = item.get("source") or "gnss"
        for target in targets:
            if target.wants(api_key, source):
                routed.setdefault(target.queue_key(api_key, source), []).append(index)
    return routed


def without_opted_out(
    items: Sequence[dict[str, Any]], raw_items: Sequence[bytes]
) -> tuple[list[dict[str, Any]], list[bytes]]:
    """The items and their bytes, with opted-out Wi-Fi networks removed from the reports.

    Items without such a network keep their bytes; a changed item is
    re-encoded, or left out when its report has no network left.
    """
    kept: list[dict[str, Any]] = []
    kept_raw: list[bytes] = []
    for item, raw in zip(items, raw_items, strict=True):
        report = item.get("report")
        stripped = strip_opted_out(report)
        if stripped is not report:
            if not any(stripped.get(name) for name in NETWORK_LISTS):
                continue
            item = {**item, "report": stripped}
            raw = encode_item(item)
        kept.append(item)
        kept_raw.append(raw)
    return kept, kept_raw


@dataclass(frozen=True, slots=True)
class IncomingStage:
    """Queued reports → a copy on every export queue that wants each, exactly once."""

    targets: Sequence[ExportTarget]

    def decode(self, raw: bytes) -> tuple[dict[str, Any], bytes]:
        return decode_object(raw), raw

    def apply(self, batch: Claimed, decoded: list[tuple[dict[str, Any], bytes]]) -> Done:
        items, good = without_opted_out([d[0] for d in decoded], [d[1] for d in decoded])
        routed = route(items, routable(self.targets))
        partitioned = {t.name for t in self.targets if t.partitioned}
        # The internal queue is drained whenever it has items: no flush timer.
        untimed = {t.base_queue for t in self.targets if t.schema == "internal"}
        now = str(int(time.time()))

        def push(pipe: Pipeline) -> None:
            for key, indices in routed.items():
                # The queued bytes go on unchanged: export consumers read
                # ``api_key`` and ``report`` and ignore ``source``.
                pipe.rpush(key, *(good[i] for i in indices))
                if key not in untimed:
                    pipe.set(keyspace.since(key), now, nx=True)
                name, _, _ = keyspace.parse_export_queue(key)
                if name in partitioned:
                    pipe.sadd(keyspace.export_partitions(name), key)

        # The copies and the acknowledgement commit together: exactly once.
        return Done(effects=push)


def process_incoming(
    client: redis.Redis,
    targets: Sequence[ExportTarget],
    *,
    consumer: str,
    batch: int = INCOMING_BATCH,
    lease_s: int = LEASE_S,
) -> int:
    """Route one claimed batch; return how many queued items it held (0: queue empty)."""
    queue = ReliableQueue(client, keyspace.INCOMING)
    stage = IncomingStage(targets)
    return run_batch(queue, stage, consumer=consumer, batch=batch, lease_s=lease_s)
