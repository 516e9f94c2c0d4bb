"""The backlog that ``MAX_QUEUE_BACKLOG`` bounds, measured the same way by every producer.

Waiting reports are the items of ``update_incoming`` plus the items of
every export queue: ``queue_export_<name>`` of each ``export_config``, or
for a partitioned target (``s3``, ``file``) the queues listed in its
``export_partitions:<name>`` set. The incoming stage copies each report to
every target that wants it, so one submitted report can wait several times
over; each copy holds Redis memory until its exporter has sent it, and
Redis memory is what the limit protects. The incoming stage's fan-out can
therefore raise the total past the limit by itself; producers then wait
until the exporters catch up. Not counted: batches claimed by a worker and
not yet acknowledged (at most one batch per consumer), the station, area
and datamap queues (observations, whose intake the locate sample-rate
controller steers), dead letters and set-aside undecodable items.

The producers, and what each does at the limit:

* submissions: refused whole with 503 + ``Retry-After`` when their reports
  would pass the limit (the client keeps the data and retries);
* locate's query reports: skipped past half the limit (they are the first
  to go when the pipeline falls behind);
* ``ichnaea replay``: waits (or, with ``--process``, processes) until its
  next chunk fits.

Each of them checks and pushes in one Redis script
(:func:`ichnaea.broker.queue.push_within`) whose only key is the queue pushed to;
the other queues' total is read just before, here, and passed in. No
producer pushes to another producer's export queues, so concurrent
submissions are serialised exactly by the script; only a worker routing a
batch from ``update_incoming`` to the export queues between that read and
the script can make the passed total briefly stale (by the batches being
routed at that moment, at most ``INCOMING_BATCH`` reports per worker). The
web role's group pusher reuses a total for up to 50 ms
(``ichnaea.broker.queue.ELSEWHERE_MAX_AGE_S``), so it can also miss what
the workers routed in that time.
Passing the total, rather than naming every queue as a key of one script,
keeps the script valid on Redis Cluster, where one script may only touch
keys of one hash slot (issue 12).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import redis
import redis.asyncio

from ichnaea.broker import keyspace
from ichnaea.broker.client import decoded
from ichnaea.pipeline.ingest.incoming import ExportTarget

# How long a web process trusts the export configs it read (operators
# edit them at run time; the worker re-reads them as often).
EXPORT_TARGETS_TTL_S = 10.0


def _partitioned(targets: Sequence[ExportTarget]) -> list[ExportTarget]:
    return [target for target in targets if target.partitioned]


def _queues(
    targets: Sequence[ExportTarget], members: Sequence[Iterable[bytes | str]], besides: str
) -> list[str]:
    """The counted queues except ``besides``; ``members`` are the partition sets, in order."""
    names = [keyspace.INCOMING]
    sets = iter(members)
    for target in targets:
        if target.partitioned:
            names += sorted(decoded(member) for member in next(sets))
        else:
            names.append(target.base_queue)
    return [name for name in dict.fromkeys(names) if name != besides]


def waiting_elsewhere(client: redis.Redis, targets: Sequence[ExportTarget], *, besides: str) -> int:
    """Reports waiting in the counted queues other than ``besides`` (the one pushed to)."""
    with client.pipeline(transaction=False) as pipe:
        for target in _partitioned(targets):
            pipe.smembers(keyspace.export_partitions(target.name))
        members = pipe.execute()
    with client.pipeline(transaction=False) as pipe:
        for name in _queues(targets, members, besides):
            pipe.llen(name)
        return sum(int(size) for size in pipe.execute())


async def waiting_elsewhere_async(
    client: redis.asyncio.Redis, targets: Sequence[ExportTarget], *, besides: str
) -> int:
    """:func:`waiting_elsewhere` for the web role's asyncio client."""
    async with client.pipeline(transaction=False) as pipe:
        for target in _partitioned(targets):
            pipe.smembers(keyspace.export_partitions(target.name))
        members = await pipe.execute()
    async with client.pipeline(transaction=False) as pipe:
        for name in _queues(targets, members, besides):
            pipe.llen(name)
        return sum(int(size) for size in await pipe.execute())
