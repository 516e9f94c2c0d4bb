"""The scheduler: exactly one process enqueues the periodic jobs.

Leadership is a Redis lock (``SET scheduler:lock <id> NX PX``) renewed well
before it expires. A second scheduler started by mistake waits for the lock
instead of doubling the schedule, and takes over within one lock period if
the leader dies.
"""

from __future__ import annotations

import logging
import os
import socket
import time

import redis

from ichnaea.config import Settings
from ichnaea.worker.jobs import DUE_KEY, PERIODIC_JOBS
from ichnaea.worker.shutdown import StopSignal

log = logging.getLogger(__name__)

LOCK_KEY = "scheduler:lock"
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
        return bool(self.client.set(LOCK_KEY, self.token, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        return bool(self._renew(keys=[LOCK_KEY], args=[self.token, self.ttl_ms]))

    def release(self) -> None:
        if self.client.get(LOCK_KEY) == self.token.encode():
            self.client.delete(LOCK_KEY)


def run_scheduler(settings: Settings, client: redis.Redis, stop: StopSignal) -> None:
    """Wait for leadership, then tick the schedule until ``stop`` is set."""
    lock = SchedulerLock(client)
    jobs = PERIODIC_JOBS
    waiting_logged = False
    while not stop.is_set():
        try:
            if not lock.acquire():
                if not waiting_logged:
                    log.warning("another scheduler holds %s; waiting for it", LOCK_KEY)
                    waiting_logged = True
                stop.wait(lock.ttl_ms / 3000)
                continue
            log.info("scheduler is the leader (%d periodic jobs)", len(jobs))
            last_run: dict[str, float] = {}
            while not stop.is_set() and lock.renew():
                now = time.monotonic()
                for job in jobs:
                    period = job.period_s or 0.0
                    if now - last_run.get(job.name, -period) >= period:
                        last_run[job.name] = now
                        client.sadd(DUE_KEY, job.name)
                stop.wait(TICK_S)
            if not stop.is_set():
                log.warning("scheduler lost the lock; waiting to take it again")
        except redis.RedisError as exc:
            log.error("scheduler: redis unavailable (%s); retrying", exc)
            stop.wait(5)
    lock.release()
