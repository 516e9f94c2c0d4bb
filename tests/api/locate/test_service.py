"""The locate service's queueing of query reports, measured like submissions (issue 8 item 7)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from starlette.testclient import TestClient

from ichnaea.broker import keyspace
from ichnaea.broker.queue import encode_item
from ichnaea.config import Settings
from ichnaea.web.app import create_app
from tests.fixtures_app import Backend, Seeder

MACS = ["a82066000011", "a82066000012", "a82066000013"]
INTERNAL_QUEUE = "queue_export_internal"


@pytest.mark.parametrize(("waiting", "stored"), [(3, 1), (4, 0)])
def test_query_reports_stop_at_half_the_backlog_counting_export_queues(
    backend: Backend,
    make_settings: Callable[..., Settings],
    seed: Seeder,
    backend_redis: redis.Redis,
    waiting: int,
    stored: int,
) -> None:
    """With MAX_QUEUE_BACKLOG 8, a query report is queued while at most 4 reports would wait."""
    seed.api_key("test")
    for i, mac in enumerate(MACS):
        seed.wifi(mac, lat=51.5 + i * 1e-5, last_seen=None)
    backend_redis.rpush(INTERNAL_QUEUE, *[encode_item({"n": n}) for n in range(waiting)])
    settings = make_settings(
        DB_READONLY_URI=backend.db_url, REDIS_URI=backend.redis_url, MAX_QUEUE_BACKLOG="8"
    )
    body = {"wifiAccessPoints": [{"macAddress": mac} for mac in MACS]}
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/geolocate?key=test", json=body).status_code == 200
    assert backend_redis.llen(keyspace.INCOMING) == stored
