import threading
import time

import pytest
import redis

from ichnaea.broker import keyspace
from ichnaea.worker.scheduler import SchedulerLock

# Queues, limits, counters and caches: also on a Redis Cluster.
pytestmark = pytest.mark.redis_cluster


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
    assert redis_client.get(keyspace.SCHEDULER_LOCK) == standby.token.encode()


def test_run_scheduler_takes_and_releases_the_lock(
    redis_client: redis.Redis, make_settings
) -> None:  # type: ignore[no-untyped-def]
    from ichnaea.worker.scheduler import run_scheduler

    stop = threading.Event()
    thread = threading.Thread(target=run_scheduler, args=(make_settings(), redis_client, stop))
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while redis_client.get(keyspace.SCHEDULER_LOCK) is None:
            assert time.monotonic() < deadline, "scheduler never took the lock"
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert redis_client.get(keyspace.SCHEDULER_LOCK) is None


def test_leader_marks_every_periodic_job_due_once(redis_client: redis.Redis, make_settings) -> None:  # type: ignore[no-untyped-def]
    from ichnaea.broker import keyspace
    from ichnaea.worker.jobs import scheduled_jobs
    from ichnaea.worker.scheduler import run_scheduler

    settings = make_settings()
    jobs = scheduled_jobs(settings)
    stop = threading.Event()
    thread = threading.Thread(target=run_scheduler, args=(settings, redis_client, stop))
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while redis_client.scard(keyspace.SCHEDULER_DUE) < len(jobs):
            assert time.monotonic() < deadline, redis_client.smembers(keyspace.SCHEDULER_DUE)
            time.sleep(0.02)
        time.sleep(1.5)  # more ticks: jobs not yet due are not added again
    finally:
        stop.set()
        thread.join(10)
    assert redis_client.smembers(keyspace.SCHEDULER_DUE) == {job.name.encode() for job in jobs}


def _epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text + "+00:00").timestamp()


def test_daily_jobs_run_at_their_utc_time_of_day_not_at_scheduler_start() -> None:
    from ichnaea.worker.jobs import periodic_job

    statregion = periodic_job("update_statregion")  # daily 00:07 UTC
    export_diff = periodic_job("cell_export_diff")  # hourly at :03
    assert statregion is not None and export_diff is not None
    before = statregion.slot(_epoch("2026-11-30T00:06:59"))
    assert statregion.slot(_epoch("2026-11-30T00:07:00")) == before + 1
    assert statregion.slot(_epoch("2026-12-01T00:06:59")) == before + 1
    assert statregion.slot(_epoch("2026-12-01T00:07:00")) == before + 2
    hour = export_diff.slot(_epoch("2026-11-30T10:02:59"))
    assert export_diff.slot(_epoch("2026-11-30T10:03:00")) == hour + 1
    assert export_diff.slot(_epoch("2026-11-30T11:02:59")) == hour + 1


def test_slots_survive_a_scheduler_restart(redis_client: redis.Redis, make_settings) -> None:  # type: ignore[no-untyped-def]
    from ichnaea.broker import keyspace
    from ichnaea.worker.jobs import scheduled_jobs
    from ichnaea.worker.scheduler import mark_due

    jobs = scheduled_jobs(make_settings())
    names = {job.name for job in jobs}
    start = _epoch("2026-11-30T00:06:30")
    assert set(mark_due(redis_client, jobs, start)) == names  # first sight: all due
    redis_client.delete(keyspace.SCHEDULER_DUE)  # the workers ran them
    # A new leader (the state is in Redis) 20 s later: nothing repeats.
    assert mark_due(redis_client, jobs, start + 20) == []
    # 00:07:30: the minute jobs and the 00:07 daily job, not the 00:17 one.
    due = set(mark_due(redis_client, jobs, start + 60))
    assert due == {"reclaim", "monitor_queues", "rate_control", "update_statregion"}
    assert redis_client.smembers(keyspace.SCHEDULER_DUE) == {name.encode() for name in due}
    # 00:10:30: the ten-minute jobs too.
    due = set(mark_due(redis_client, jobs, _epoch("2026-11-30T00:10:30")))
    assert {"update_statcounter", "monitor_api_users", "monitor_api_key_limits"} < due
    # A scheduler down from 00:08 to 00:30 catches up once on return.
    due = set(mark_due(redis_client, jobs, _epoch("2026-11-30T00:30:00")))
    assert "cleanup" in due and "update_statregion" not in due


def test_cell_exports_are_scheduled_only_with_an_asset_bucket(make_settings) -> None:  # type: ignore[no-untyped-def]
    from ichnaea.worker.jobs import registered_jobs, scheduled_jobs

    exports = {"cell_export_diff", "cell_export_full"}
    assert not exports & {job.name for job in scheduled_jobs(make_settings(ASSET_BUCKET=""))}
    # The embedded setup exports to its local asset directory.
    assert exports <= {job.name for job in scheduled_jobs(make_settings())}
    with_bucket = make_settings(ASSET_BUCKET="public-assets")
    assert exports <= {job.name for job in scheduled_jobs(with_bucket)}
    assert exports <= {job.name for job in registered_jobs(with_bucket)}


def test_a_worker_runs_due_jobs_and_ignores_unknown_names(
    redis_client: redis.Redis, make_settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import ichnaea.worker.jobs as jobs

    ran: list[str] = []
    monkeypatch.setattr(
        jobs, "PERIODIC_JOBS", (jobs.Job("monitor_queues", lambda r: ran.append("m") or 0, 60),)
    )
    redis_client.sadd(keyspace.SCHEDULER_DUE, "monitor_queues", "no_such_job")
    res = jobs.Resources(make_settings(), None, redis_client)
    assert jobs.run_due_jobs(res) == 1
    assert ran == ["m"]
    assert redis_client.scard(keyspace.SCHEDULER_DUE) == 0


def test_queue_gauges_carry_the_data_type_and_cover_export_queues_quirk_20_fixed(
    redis_client: redis.Redis, make_settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import ichnaea.worker.jobs as jobs
    from ichnaea.pipeline.ingest.incoming import ExportTarget
    from tests._support import RecordingMetrics

    backup = ExportTarget("backup", "dummy", frozenset(), frozenset())
    monkeypatch.setattr(jobs.Resources, "targets", lambda self: ([backup], {}))
    redis_client.rpush("update_wifi_3", b"{}", b"{}")
    redis_client.rpush("queue_export_backup", b"{}")
    metrics = RecordingMetrics()
    res = jobs.Resources(make_settings(), None, redis_client, metrics=metrics)
    jobs.run_job(jobs.periodic_job("monitor_queues"), res)
    gauges = {
        tags["queue"]: (value, tags["data_type"])
        for kind, name, value, tags in metrics.lines
        if kind == "g"
    }
    assert gauges["update_wifi_3"] == (2, "wifi")
    assert gauges["queue_export_backup"] == (1, "exports")
    assert gauges["update_incoming"] == (0, "report")
    assert gauges["update_cellarea"] == (0, "cellarea")
    assert gauges["update_cell_lte"] == (0, "cell")
    assert gauges["update_datamap_ne"] == (0, "datamap")


def test_region_stats_are_scheduled_without_a_map_token_quirk_2_fixed(
    make_settings,
) -> None:  # type: ignore[no-untyped-def]
    from ichnaea.worker.jobs import registered_jobs, scheduled_jobs

    settings = make_settings()
    assert not settings.map_token
    names = {job.name for job in registered_jobs(settings) if job.period_s}
    assert {"update_statregion", "cleanup"} <= names
    assert names == {job.name for job in scheduled_jobs(settings)}


def test_rate_control_job_steers_the_locate_sample_rate_by_the_station_backlog(
    redis_client: redis.Redis, make_settings
) -> None:  # type: ignore[no-untyped-def]
    import ichnaea.worker.jobs as jobs
    from ichnaea.broker import keyspace

    for key, value in {"rate_controller_enabled": "1", "rate_controller_target": "10",
                       "rate_controller_kp": "1"}.items():  # fmt: skip
        redis_client.set(key, value)
    redis_client.rpush("update_wifi_3", *[b"{}"] * 15)  # backlog 15 > target 10
    res = jobs.Resources(make_settings(), None, redis_client)
    jobs.run_job(jobs.periodic_job("rate_control"), res)
    assert float(redis_client.get(keyspace.SAMPLE_RATE)) == 0.0
    redis_client.delete("update_wifi_3")
    jobs.run_job(jobs.periodic_job("rate_control"), res)
    assert float(redis_client.get(keyspace.SAMPLE_RATE)) == 100.0
