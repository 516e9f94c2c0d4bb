"""One worker process of the pool: its resources and its loop over the jobs.

Imported by the pool's fork server (:mod:`ichnaea.worker.preload`), not by
the supervisor (:mod:`ichnaea.worker.pool`), which needs none of the pipeline.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import signal
import time

from ichnaea.broker.client import connect
from ichnaea.config import Settings
from ichnaea.logging import configure_logging
from ichnaea.metrics import make_metrics
from ichnaea.repositories.session import create_engine
from ichnaea.worker.jobs import (
    RECLAIM,
    Resources,
    registered_jobs,
    rename_legacy_keys,
    run_due_jobs,
    run_job,
    run_queue_jobs,
)
from ichnaea.worker.shutdown import ShutdownFlag

log = logging.getLogger(__name__)

# Allocations between two collections of the youngest generation.
GC_THRESHOLD = 50_000

# Idle polling backs off from the first to the second: a busy pipeline
# hands work between stages within milliseconds, an idle one costs little.
IDLE_SLEEP_MIN_S = 0.02
IDLE_SLEEP_MAX_S = 1.0


def run_jobs_once(resources: Resources) -> int:
    """One pass over the queue jobs plus the periodic jobs marked due; return the work done."""
    return run_queue_jobs(resources) + run_due_jobs(resources)


def process_main(settings: Settings, index: int) -> None:
    configure_logging(settings.logging_level, role=f"worker-{index}")
    # A batch builds and drops tens of thousands of small acyclic dicts and
    # lists; with the default threshold (700) the cyclic collector ran every
    # few hundred of them. The imported modules were frozen by the fork
    # server (ichnaea.worker.preload), so a collection walks only the batch.
    gc.set_threshold(GC_THRESHOLD, 20, 20)
    # The parent asks for a stop with SIGTERM, which ends the process after
    # the batch in hand. No lock is shared with the parent or the siblings (a
    # multiprocessing.Event is one): a process killed while holding it would
    # leave every other one waiting on it forever.
    own = ShutdownFlag().install()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    resources = Resources(
        settings=settings,
        db=create_engine(settings.db_readwrite_url),
        redis=connect(settings, max_connections=10),
        metrics=make_metrics(settings),
    )
    log.info("worker process ready (%d jobs registered)", len(registered_jobs(settings)))
    try:
        rename_legacy_keys(resources)
    except Exception:
        log.exception("could not look for Redis keys of an older version; going on")
    try:
        # A supervisor killed with SIGKILL cannot ask: an orphan exits on its
        # own. (Our parent is the fork server, which outlives the supervisor
        # while we do; multiprocessing gives us a pipe from the supervisor.)
        supervisor = multiprocessing.parent_process()
        last_reclaim = time.monotonic()
        idle_s = IDLE_SLEEP_MIN_S
        while not own.is_set() and (supervisor is None or supervisor.is_alive()):
            try:
                handled = run_jobs_once(resources)
            except Exception:
                # Redis or the database unreachable: keep the process, wait, retry.
                log.exception("worker pass failed; retrying in %.0f s", IDLE_SLEEP_MAX_S)
                own.wait(IDLE_SLEEP_MAX_S)
                continue
            if handled:
                idle_s = IDLE_SLEEP_MIN_S
                continue
            # Idle: take back what dead workers left, without waiting for
            # the scheduler (the pipeline heals itself with no scheduler).
            if time.monotonic() - last_reclaim >= settings.queue_lease_s:
                last_reclaim = time.monotonic()
                run_job(RECLAIM, resources)
            own.wait(idle_s)
            idle_s = min(idle_s * 2, IDLE_SLEEP_MAX_S)
    finally:
        resources.db.dispose()
        resources.redis.close()
        log.info("worker process stopped")
