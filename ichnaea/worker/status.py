"""``ichnaea status``: what an operator wants to know first about the pipeline.

One read-only pass over Redis and the database:

* the size of every data queue (``update_incoming``, the export queues of
  every ``export_config``, the station shards, cell areas, datamap);
* items claimed by workers and not yet acknowledged (in progress, or left by
  a stopped worker until their lease runs out);
* parked batches per dead-letter queue (``ichnaea deadletter``) and items
  set aside as undecodable;
* the scheduler: who holds the leader lock, and for each periodic job the
  start of the last period it was marked due in;
* the locate sample rate the controller set.

Each part that cannot be read says so instead of failing the whole report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy.exc import SQLAlchemyError

from ichnaea.broker import keyspace, outbox
from ichnaea.broker.client import REDIS_ERRORS, decoded
from ichnaea.pipeline.ingest.incoming import ExportTarget
from ichnaea.worker.jobs import Resources, claimed_elsewhere, data_queue_names, scheduled_jobs


@dataclass
class PipelineStatus:
    queues: dict[str, int] = field(default_factory=dict)
    claimed: int | None = None
    # Redis Cluster: acknowledged batches whose output waits in an outbox.
    undelivered: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    undecodable: dict[str, int] = field(default_factory=dict)
    scheduler_leader: str | None = None
    last_runs: dict[str, str | None] = field(default_factory=dict)
    sample_rate: str | None = None
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queues": self.queues,
            "claimed": self.claimed,
            "undelivered": self.undelivered,
            "dead_letters": self.dead_letters,
            "undecodable": self.undecodable,
            "scheduler_leader": self.scheduler_leader,
            "last_runs": self.last_runs,
            "sample_rate": self.sample_rate,
            "problems": self.problems,
        }


def _keys(client: redis.Redis, pattern: str) -> list[str]:
    return sorted(decoded(key) for key in client.scan_iter(match=pattern, count=500))


def pipeline_status(res: Resources) -> PipelineStatus:
    """Collect the status (module docstring); problems are listed, not raised."""
    status = PipelineStatus()
    client = res.redis
    try:
        client.ping()
    except REDIS_ERRORS as exc:
        status.problems.append(f"redis unreachable: {exc}")
        return status
    targets: list[ExportTarget] = []
    try:
        targets, _ = res.targets()
    except SQLAlchemyError as exc:
        status.problems.append(f"database unreachable, export queues not listed: {exc}")
    names = data_queue_names(res, targets)
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.llen(name)
        status.queues = dict(zip(names, (int(n) for n in pipe.execute()), strict=True))
    # claimed_elsewhere counts the outbox entries too (ichnaea process waits
    # for them); shown apart here.
    status.undelivered = outbox.pending(client, names)
    status.claimed = claimed_elsewhere(res, targets) - status.undelivered
    for key in _keys(client, keyspace.DEAD_LETTER_PATTERN):
        status.dead_letters[key] = int(client.llen(key))
    for key in _keys(client, keyspace.UNDECODABLE_PATTERN):
        status.undecodable[key] = int(client.llen(key))
    status.scheduler_leader = decoded(client.get(keyspace.SCHEDULER_LOCK))
    slots = client.hgetall(keyspace.SCHEDULER_SLOTS)
    for job in scheduled_jobs(res.settings):
        slot = decoded(slots.get(job.name.encode()))
        if slot is None or not job.period_s:
            status.last_runs[job.name] = None
            continue
        start = int(slot) * job.period_s + job.offset_s
        status.last_runs[job.name] = datetime.fromtimestamp(start, UTC).isoformat(
            timespec="seconds"
        )
    status.sample_rate = decoded(client.get(keyspace.SAMPLE_RATE))
    if status.scheduler_leader is None:
        status.problems.append("no scheduler holds the lock: periodic jobs are not enqueued")
    if status.dead_letters:
        status.problems.append(
            f"{sum(status.dead_letters.values())} parked batches: see `ichnaea deadletter list`"
        )
    return status


def render(status: PipelineStatus) -> list[str]:
    """The status as lines of text for a terminal."""
    if status.claimed is None:  # Redis could not be read: nothing else is known
        return [f"PROBLEM: {problem}" for problem in status.problems]
    lines = ["queues (waiting items):"]
    busy = {name: size for name, size in status.queues.items() if size}
    lines += [f"  {name:<40} {size:>10,}" for name, size in busy.items()]
    idle = len(status.queues) - len(busy)
    lines.append(f"  ({idle} other queues empty)" if busy else f"  all {idle} queues empty")
    if status.claimed is not None:
        lines.append(f"claimed by workers, not yet acknowledged: {status.claimed:,}")
    if status.undelivered:
        lines.append(
            f"acknowledged, output not yet delivered (Redis Cluster outboxes): "
            f"{status.undelivered:,} (the reclaim job delivers what stopped workers left)"
        )
    for title, counts in (
        ("dead letters", status.dead_letters),
        ("undecodable", status.undecodable),
    ):
        lines.append(f"{title}: " + (", ".join(f"{k} {n:,}" for k, n in counts.items()) or "none"))
    lines.append(f"scheduler leader: {status.scheduler_leader or 'none'}")
    lines += [f"  {name:<24} last due {when or 'never'}" for name, when in status.last_runs.items()]
    lines.append(f"locate sample rate: {status.sample_rate or '100 (default)'}")
    lines += [f"PROBLEM: {problem}" for problem in status.problems]
    return lines
