"""The scheduler: exactly one process enqueues the periodic jobs.

Leadership is a Redis lock (``SET scheduler:lock <id> NX PX``) renewed well
before it expires. A second scheduler started by mistake waits for the lock
instead of doubling the schedule, and takes over within one lock period if
the leader dies.

Each job runs once per slot of UTC wall time (``Job.slot``: its period,
shifted by its offset, so daily jobs run at their time of day). The last
slot marked due is kept per job in the hash ``scheduler:slots``, so a
restarted or new leader neither repeats a daily job nor skips one whose
time came while no scheduler ran: a job is marked due when the current
slot differs from the stored one (including the first time it is seen).
"""

from __future__ import annotations

import logging
import os
import socket
import time

import redis

from ichnaea.broker import keyspace
from ichnaea.broker.client import REDIS_ERRORS
from ichnaea.config import Settings
from ichnaea.worker.jobs import Job, scheduled_jobs
from ichnaea.worker.shutdown import StopSignal

log = logging.getLogger(__name__)

LOCK_TTL_MS = 30_000
TICK_S = 1.0

# Renew only if we still hold the lock (compare-and-extend).
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""


class SchedulerLock:
    def __init__(self, client: redis.Redis, *, ttl_ms: int = LOCK_TTL_MS) -> None:
        self.client = client
        self.ttl_ms = ttl_ms
        self.token = f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"
        self._renew = client.register_script(_RENEW)

    def acquire(self) -> bool:
        return bool(self.client.set(keyspace.SCHEDULER_LOCK, self.token, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        return bool(self._renew(keys=[keyspace.SCHEDULER_LOCK], args=[self.token, self.ttl_ms]))

    def release(self) -> None:
        if self.client.get(keyspace.SCHEDULER_LOCK) == self.token.encode():
            self.client.delete(keyspace.SCHEDULER_LOCK)


def mark_due(client: redis.Redis, jobs: tuple[Job, ...], epoch_s: float) -> list[str]:
    """Add the jobs whose slot at ``epoch_s`` has not been marked yet to the due set."""
    stored = client.hmget(keyspace.SCHEDULER_SLOTS, [job.name for job in jobs]) if jobs else []
    due = {
        job.name: job.slot(epoch_s)
        for job, last in zip(jobs, stored, strict=True)
        if last is None or int(last) != job.slot(epoch_s)
    }
    if due:
        # No transaction (the two keys lie in different slots on a Redis
        # Cluster): the due set is written first, so a tick cut short
        # marks a job again next time (a set), never skips it.
        with client.pipeline(transaction=False) as pipe:
            pipe.sadd(keyspace.SCHEDULER_DUE, *due)
            for name, slot in due.items():
                pipe.hset(keyspace.SCHEDULER_SLOTS, name, slot)
            pipe.execute()
    return list(due)


def run_scheduler(settings: Settings, client: redis.Redis, stop: StopSignal) -> None:
    """Wait for leadership, then tick the schedule until ``stop`` is set."""
    lock = SchedulerLock(client)
    jobs = scheduled_jobs(settings)
    waiting_logged = False
    while not stop.is_set():
        try:
            if not lock.acquire():
                if not waiting_logged:
                    log.warning(
                        "another scheduler holds %s; waiting for it", keyspace.SCHEDULER_LOCK
                    )
                    waiting_logged = True
                stop.wait(lock.ttl_ms / 3000)
                continue
            log.info("scheduler is the leader (%d periodic jobs)", len(jobs))
            while not stop.is_set() and lock.renew():
                mark_due(client, jobs, time.time())
                stop.wait(TICK_S)
            if not stop.is_set():
                log.warning("scheduler lost the lock; waiting to take it again")
        except REDIS_ERRORS as exc:
            log.error("scheduler: redis unavailable (%s); retrying", exc)
            stop.wait(5)
    lock.release()
