"""The worker pool: one process per usable core, each with its own resources.

The processes are forked from a fork server (``multiprocessing``'s
``forkserver``) that imported the pipeline and loaded the geocoder once
(:mod:`ichnaea.worker.preload`), so a new process starts in a tenth of a
CPU second rather than a whole one. The fork server is a fresh single-threaded
process, so no lock or connection of the supervisor is ever forked. Each
process opens its own database engine and Redis pool, then loops over the
registered jobs, running each that has work, and sleeps briefly when none
had any (:mod:`ichnaea.worker.process`). SIGTERM or SIGINT asks every
process to finish the batch in hand and exit; a process that dies is
restarted so the pool keeps its size.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.synchronize
import time

from ichnaea.config import Settings
from ichnaea.worker.shutdown import ShutdownFlag

log = logging.getLogger(__name__)


def _process_main(settings: Settings, index: int) -> None:
    # Imported here, in the worker process (the fork server has it loaded
    # already): the supervisor itself never imports the pipeline.
    from ichnaea.worker.process import process_main

    process_main(settings, index)


def run_pool(settings: Settings, processes: int) -> None:
    """Run ``processes`` worker processes until SIGTERM/SIGINT."""
    ctx = multiprocessing.get_context("forkserver")
    # Effective only before the fork server starts (once per supervisor).
    ctx.set_forkserver_preload(["ichnaea.worker.preload"])
    shutdown = ShutdownFlag().install()

    def start(index: int) -> multiprocessing.process.BaseProcess:
        proc = ctx.Process(target=_process_main, args=(settings, index), daemon=False)
        proc.start()
        return proc

    procs = [start(i) for i in range(processes)]
    log.info("worker pool started with %d processes", processes)
    while not shutdown.wait(1.0):
        for i, proc in enumerate(procs):
            if not proc.is_alive():
                log.error("worker process %d exited with %s; restarting", i, proc.exitcode)
                procs[i] = start(i)
    log.info("stopping the worker pool (signal %s)", shutdown.signum)
    for proc in procs:
        proc.terminate()  # SIGTERM: finish the batch in hand, then exit
    deadline = time.monotonic() + 30
    for proc in procs:
        proc.join(max(0.1, deadline - time.monotonic()))
        if proc.is_alive():
            log.error("worker process %d did not stop in time; killing it", proc.pid)
            proc.kill()
            proc.join()
