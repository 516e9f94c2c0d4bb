"""``MAX_QUEUE_BACKLOG`` under concurrent submissions (issue 8 item 7).

Waiting reports are those in ``update_incoming`` plus those in the export
queues the incoming stage fans them out to. A submission that would push
that total past the limit is refused with 503 + ``Retry-After``; the check
and the push are one atomic step, so concurrent submissions cannot overrun
it, and every accepted report is on the queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from starlette.testclient import TestClient

from ichnaea.api.locate import service
from ichnaea.broker import keyspace
from ichnaea.broker.queue import decode_item, encode_item
from ichnaea.config import Settings
from ichnaea.models.api_key import ExportConfig
from ichnaea.repositories.session import create_engine
from ichnaea.web.app import create_app
from tests.fixtures_app import Backend

INTERNAL_QUEUE = "queue_export_internal"  # the export_config row every database starts with


@pytest.fixture
def make_client(
    backend: Backend, make_settings: Callable[..., Settings]
) -> Iterator[Callable[[int], TestClient]]:
    clients: list[TestClient] = []

    def make(limit: int) -> TestClient:
        settings = make_settings(
            DB_READONLY_URI=backend.db_url,
            REDIS_URI=backend.redis_url,
            MAX_QUEUE_BACKLOG=str(limit),
        )
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def report(mac: str) -> dict[str, object]:
    return {"wifiAccessPoints": [{"macAddress": mac}]}


def macs_of(raw_items: list[bytes]) -> list[str]:
    return [decode_item(raw)["report"]["wifiAccessPoints"][0]["macAddress"] for raw in raw_items]


def test_reports_waiting_in_export_queues_count_against_the_backlog(
    make_client: Callable[[int], TestClient], backend_redis: redis.Redis
) -> None:
    backend_redis.rpush(INTERNAL_QUEUE, *[encode_item({"n": n}) for n in range(3)])
    client = make_client(5)
    body = {"items": [report("a82066000001"), report("a82066000002")]}
    assert client.post("/v2/geosubmit", json=body).status_code == 200  # 3 + 2 = 5
    refused = client.post("/v2/geosubmit", json={"items": [report("a82066000003")]})
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "30"
    assert refused.json()["error"]["errors"][0]["reason"] == "serviceUnavailable"
    assert backend_redis.llen(keyspace.INCOMING) == 2


def test_partitioned_export_queues_count_against_the_backlog(
    backend: Backend, make_client: Callable[[int], TestClient], backend_redis: redis.Redis
) -> None:
    """An archive target (``s3``/``file``) has one queue per source and key, all counted."""
    engine = create_engine(backend.db_url, pooled=False)
    table = ExportConfig.__table__
    with engine.begin() as conn:
        conn.execute(sa.insert(table).values(name="backup", schema="s3", batch=100))
    try:
        queues = ["queue_export_backup:gnss:no_key", "queue_export_backup:query:test"]
        backend_redis.sadd(keyspace.export_partitions("backup"), *queues)
        for queue in queues:
            backend_redis.rpush(queue, encode_item({"n": 1}), encode_item({"n": 2}))
        client = make_client(5)
        assert client.post("/v2/geosubmit", json={"items": [report("a82066000001")]}).is_success
        second = client.post("/v2/geosubmit", json={"items": [report("a82066000002")]})
        assert second.status_code == 503  # 4 in the partitions + 1 waiting = 5
        assert backend_redis.llen(keyspace.INCOMING) == 1
    finally:
        with engine.begin() as conn:
            conn.execute(sa.delete(table).where(table.c.name == "backup"))
        engine.dispose()


def test_a_submission_that_would_pass_the_limit_is_refused_whole(
    make_client: Callable[[int], TestClient], backend_redis: redis.Redis
) -> None:
    client = make_client(3)
    assert client.post("/v2/geosubmit", json={"items": [report("a82066000001")]}).is_success
    body = {"items": [report(f"a820660000{n:02d}") for n in range(2, 5)]}
    assert client.post("/v2/geosubmit", json=body).status_code == 503  # 1 + 3 > 3
    assert macs_of(backend_redis.lrange(keyspace.INCOMING, 0, -1)) == ["a82066000001"]


@pytest.mark.parametrize("slow_config_read", [False, True])
def test_concurrent_submissions_never_overrun_the_backlog_and_lose_nothing(
    make_client: Callable[[int], TestClient],
    backend_redis: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    slow_config_read: bool,
) -> None:
    """``slow_config_read``: the submissions arrive while the export configs are being read."""
    if slow_config_read:
        read = service._read_targets

        def slow_read(db: Any) -> Any:
            time.sleep(0.5)  # a window for the other requests, not a measurement
            return read(db)

        monkeypatch.setattr(service, "_read_targets", slow_read)
    limit, per_request, requests = 50, 7, 40
    backend_redis.rpush(INTERNAL_QUEUE, *[encode_item({"n": n}) for n in range(8)])
    client = make_client(limit)

    def submit(number: int) -> tuple[int, list[str]]:
        macs = [f"a8206{number:03d}{n:04d}" for n in range(per_request)]
        response = client.post("/v2/geosubmit", json={"items": [report(m) for m in macs]})
        return response.status_code, macs

    # The threads share the app's one event loop (TestClient's portal), so the
    # requests interleave at every await, as they do under a real server.
    with ThreadPoolExecutor(requests) as pool:
        answers = list(pool.map(submit, range(requests)))
    accepted = [mac for status, macs in answers if status == 200 for mac in macs]
    assert {status for status, _ in answers} <= {200, 503}
    waiting = backend_redis.llen(keyspace.INCOMING) + backend_redis.llen(INTERNAL_QUEUE)
    assert waiting <= limit
    assert sorted(macs_of(backend_redis.lrange(keyspace.INCOMING, 0, -1))) == sorted(accepted)
    assert len(accepted) == (limit - 8) // per_request * per_request  # as full as it can be


def test_submission_with_the_database_down_is_queued_against_incoming_alone(
    make_settings: Callable[..., Settings], redis_server_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The export configs cannot be read: their queues go uncounted, the data is still taken."""
    redis_client = redis.Redis.from_url(redis_server_url)
    redis_client.flushdb()
    settings = make_settings(
        DB_READONLY_URI="mysql://root@127.0.0.1:1/location",
        REDIS_URI=redis_server_url,
        MAX_QUEUE_BACKLOG="1",
    )
    with TestClient(create_app(settings)) as client:
        body = {"items": [report("a82066000001")]}
        assert client.post("/v2/geosubmit", json=body).status_code == 200
        assert client.post("/v2/geosubmit", json=body).status_code == 503
    assert redis_client.llen(keyspace.INCOMING) == 1
    assert "export configs not read, database unavailable" in caplog.text
    redis_client.close()
