import threading
import time

import redis

from ichnaea.worker.scheduler import LOCK_KEY, SchedulerLock


def test_second_scheduler_waits_for_the_lock(redis_client: redis.Redis) -> None:
    leader = SchedulerLock(redis_client, ttl_ms=2000)
    standby = SchedulerLock(redis_client, ttl_ms=2000)
    assert leader.acquire()
    assert not standby.acquire()
    assert leader.renew()
    assert not standby.renew()  # renewing needs the token of the holder
    leader.release()
    assert standby.acquire()
    assert not leader.renew()


def test_lock_of_a_dead_leader_expires(redis_client: redis.Redis) -> None:
    dead = SchedulerLock(redis_client, ttl_ms=200)
    assert dead.acquire()
    standby = SchedulerLock(redis_client, ttl_ms=200)
    deadline = time.monotonic() + 5
    while not standby.acquire():
        assert time.monotonic() < deadline, "the lock never expired"
        time.sleep(0.05)
    assert redis_client.get(LOCK_KEY) == standby.token.encode()


def test_run_scheduler_takes_and_releases_the_lock(
    redis_client: redis.Redis, make_settings
) -> None:  # type: ignore[no-untyped-def]
    from ichnaea.worker.scheduler import run_scheduler

    stop = threading.Event()
    thread = threading.Thread(target=run_scheduler, args=(make_settings(), redis_client, stop))
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while redis_client.get(LOCK_KEY) is None:
            assert time.monotonic() < deadline, "scheduler never took the lock"
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert redis_client.get(LOCK_KEY) is None
