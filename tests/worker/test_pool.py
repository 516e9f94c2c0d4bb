"""The worker pool as a real process tree."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests._support import pool_workers

pytestmark = pytest.mark.slow


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def start_pool(tmp_path: Path, redis_url: str) -> subprocess.Popen[bytes]:
    """``ichnaea worker`` with two processes on Redis alone (no database)."""
    env = {**os.environ, "ICHNAEA_DATA_DIR": str(tmp_path), "REDIS_URI": redis_url}
    env.pop("DB_READWRITE_URI", None)
    return subprocess.Popen(
        [sys.executable, "-m", "ichnaea", "worker", "--processes", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_cleanly(parent: subprocess.Popen[bytes], pids: set[int] | list[int]) -> None:
    """SIGTERM the pool: it exits 0 and leaves none of ``pids`` running."""
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=30) == 0
    assert not any(alive(pid) for pid in pids)


def wait_for_workers(parent: int, count: int) -> list[int]:
    """The pool's worker processes, once ``count`` of them run (30 s at most)."""
    deadline = time.monotonic() + 30
    workers: list[int] = []
    while len(workers) < count:
        assert time.monotonic() < deadline, "the pool never started its processes"
        time.sleep(0.2)
        workers = pool_workers(parent)
    return workers


def test_workers_exit_when_the_pool_parent_is_killed(tmp_path: Path, redis_server_url: str) -> None:
    parent = start_pool(tmp_path, redis_server_url)
    try:
        workers = wait_for_workers(parent.pid, 2)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in workers):
            assert time.monotonic() < deadline, "orphaned workers kept running"
            time.sleep(0.2)
    finally:
        if parent.poll() is None:
            parent.kill()


def test_workers_wait_out_an_unreachable_redis(tmp_path: Path) -> None:
    # A port nothing listens on: every pass fails; the processes must stay up.
    env = {**os.environ, "ICHNAEA_DATA_DIR": str(tmp_path), "REDIS_URI": "redis://127.0.0.1:9/0"}
    env.pop("DB_READWRITE_URI", None)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        parent = subprocess.Popen(
            [sys.executable, "-m", "ichnaea", "worker", "--processes", "1"],
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        deadline = time.monotonic() + 30
        while log.read_text().count("worker pass failed") < 2:
            assert time.monotonic() < deadline, log.read_text()
            assert parent.poll() is None, log.read_text()
            time.sleep(0.2)
        assert "restarting" not in log.read_text()  # the same process kept trying
    finally:
        parent.send_signal(signal.SIGTERM)
        try:
            parent.wait(30)
        except subprocess.TimeoutExpired:
            parent.kill()
            parent.wait()
    assert parent.returncode == 0, log.read_text()


def test_a_pool_whose_workers_are_killed_again_and_again_still_stops(
    tmp_path: Path, redis_server_url: str
) -> None:
    """Workers share no lock with the pool or each other: none can die holding it.

    (Their stop signal was a multiprocessing.Event once; a sibling SIGKILLed
    inside its wait left the others blocked on its lock for good.)
    """
    parent = start_pool(tmp_path, redis_server_url)
    try:
        seen: set[int] = set()
        deadline = time.monotonic() + 60
        kills = 0
        while kills < 6:
            assert time.monotonic() < deadline, "the pool stopped replacing its processes"
            workers = pool_workers(parent.pid)
            seen.update(workers)
            if len(workers) == 2:
                os.kill(workers[kills % 2], signal.SIGKILL)
                kills += 1
            time.sleep(0.3)
        time.sleep(1.5)  # the replacements start and reach their idle wait
        seen.update(pool_workers(parent.pid))
        stop_cleanly(parent, seen)
    finally:
        if parent.poll() is None:
            parent.kill()


def test_workers_are_forked_from_a_server_that_loaded_the_pipeline(
    tmp_path: Path, redis_server_url: str
) -> None:
    """A worker process starts as a fork of the pool's fork server, which imported the
    pipeline and loaded the geocoder once (ichnaea.worker.preload), not as a fresh
    interpreter that imports everything again."""
    parent = start_pool(tmp_path, redis_server_url)
    try:
        workers = wait_for_workers(parent.pid, 2)
        for pid in workers:
            server = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            assert server != parent.pid
            assert b"ichnaea.worker.preload" in Path(f"/proc/{server}/cmdline").read_bytes()
        stop_cleanly(parent, workers)
    finally:
        if parent.poll() is None:
            parent.kill()
