import time
from pathlib import Path

import pytest
import redis

from ichnaea.broker.embedded import (
    AOF_REWRITE_MIN_SIZE_BYTES,
    AOF_REWRITE_PERCENTAGE,
    EmbeddedRedisError,
    ensure_embedded_redis,
)


def test_embedded_redis_starts_is_shared_and_stops(tmp_path: Path) -> None:
    owner = ensure_embedded_redis(tmp_path)
    try:
        assert owner.process is not None
        client = redis.Redis.from_url(owner.url)
        client.set("k", "v")
        # A second role finds the running server and shares its data.
        guest = ensure_embedded_redis(tmp_path)
        assert guest.process is None and guest.url == owner.url
        assert redis.Redis.from_url(guest.url).get("k") == b"v"
        guest.stop()  # not the owner: the server keeps running
        assert client.ping()
    finally:
        owner.stop()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(owner.url).ping()


def test_embedded_redis_keeps_data_across_restarts(tmp_path: Path) -> None:
    first = ensure_embedded_redis(tmp_path)
    redis.Redis.from_url(first.url).rpush("queue", "accepted-report")
    first.stop()
    second = ensure_embedded_redis(tmp_path)
    try:
        assert redis.Redis.from_url(second.url).lrange("queue", 0, -1) == [b"accepted-report"]
    finally:
        second.stop()


def test_too_long_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    with pytest.raises(EmbeddedRedisError, match="ICHNAEA_DATA_DIR"):
        ensure_embedded_redis(deep)


def test_embedded_redis_rewrites_its_append_only_file(tmp_path: Path) -> None:
    server = ensure_embedded_redis(tmp_path)
    try:
        config = redis.Redis.from_url(server.url).config_get("auto-aof-rewrite-*")
        assert config["auto-aof-rewrite-percentage"] == str(AOF_REWRITE_PERCENTAGE)
        assert config["auto-aof-rewrite-min-size"] == str(AOF_REWRITE_MIN_SIZE_BYTES)
    finally:
        server.stop()


@pytest.mark.slow
def test_embedded_redis_append_only_file_shrinks_after_a_drained_queue(tmp_path: Path) -> None:
    server = ensure_embedded_redis(tmp_path)
    try:
        client = redis.Redis.from_url(server.url)
        # A queue filled and drained: the log holds every push and pop, the
        # data set is empty, so a rewrite leaves a file of a few bytes.
        chunk = b"x" * 65536
        pushed = 4 * AOF_REWRITE_MIN_SIZE_BYTES
        for _ in range(pushed // len(chunk)):
            client.rpush("queue", chunk)
            client.lpop("queue")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            info = client.info("persistence")
            if info["aof_last_rewrite_time_sec"] >= 0 and not info["aof_rewrite_in_progress"]:
                break
            time.sleep(0.1)
        assert client.info("persistence")["aof_last_rewrite_time_sec"] >= 0, "no rewrite"
        assert (tmp_path / "appendonly.aof").stat().st_size < pushed
    finally:
        server.stop()


def test_embedded_redis_stop_does_not_back_off_after_shutdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SHUTDOWN closes the connection, which the client must take as done,
    # not as an error to retry (with back-off sleeps) until it gives up.
    server = ensure_embedded_redis(tmp_path)
    slept: list[float] = []
    real_sleep = time.sleep

    def recording_sleep(seconds: float) -> None:
        slept.append(seconds)
        real_sleep(seconds)

    # redis-py's retry loop sleeps through its own reference to time.sleep.
    monkeypatch.setattr("redis.retry.sleep", recording_sleep)
    server.stop()
    assert server.process is None
    assert sum(slept) < 0.5, slept
