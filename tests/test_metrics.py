"""StatsD metrics over a real UDP socket, and the API's request metrics."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from ichnaea.config import Settings
from ichnaea.metrics import MAX_DATAGRAM_BYTES, Metrics, StatsdMetrics, make_metrics
from ichnaea.web.app import create_app
from tests.fixtures_app import PROXY_PEER, Seeder

LONDON = {"X-Forwarded-For": "81.2.69.192"}


@pytest.fixture
def collector() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    yield sock
    sock.close()


def datagrams(sock: socket.socket) -> list[str]:
    found = []
    sock.settimeout(0.3)
    try:
        while True:
            found.append(sock.recv(65536).decode())
    except TimeoutError:
        return found


def received(sock: socket.socket) -> list[str]:
    """The metric lines, several to a datagram."""
    return [line for datagram in datagrams(sock) for line in datagram.split("\n")]


def test_statsd_lines_carry_prefix_type_and_tags(collector: socket.socket) -> None:
    metrics = StatsdMetrics("127.0.0.1", collector.getsockname()[1])
    metrics.incr("locate.request", tags={"path": "v1.geolocate", "key": "test"})
    metrics.timing("request.timing", 12.5)
    metrics.gauge("queue", 7, tags={"queue": "update_incoming"})
    metrics.close()
    assert received(collector) == [
        "location.locate.request:1|c|#path:v1.geolocate,key:test",
        "location.request.timing:12.500|ms",
        "location.queue:7|g|#queue:update_incoming",
    ]


def test_lines_share_datagrams_up_to_the_size_limit_and_are_flushed_in_time(
    collector: socket.socket,
) -> None:
    metrics = StatsdMetrics("127.0.0.1", collector.getsockname()[1], flush_interval_s=0.05)
    for i in range(200):
        metrics.incr("locate.request", tags={"key": f"key{i:03}"})
    # Without close: the flusher sends what is left within its interval.
    sent = datagrams(collector)
    lines = [line for datagram in sent for line in datagram.split("\n")]
    assert lines == [f"location.locate.request:1|c|#key:key{i:03}" for i in range(200)]
    assert 1 < len(sent) < 200  # several lines to a datagram
    assert all(len(datagram.encode()) <= MAX_DATAGRAM_BYTES for datagram in sent)
    metrics.close()


def test_lines_gathered_when_a_command_exits_are_sent(collector: socket.socket) -> None:
    port = collector.getsockname()[1]
    code = (
        "from ichnaea.metrics import StatsdMetrics;"
        f"StatsdMetrics('127.0.0.1', {port}, flush_interval_s=60).incr('import.rows', 5)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert received(collector) == ["location.import.rows:5|c"]


def test_no_statsd_host_means_silent_metrics(make_settings: Callable[..., Settings]) -> None:
    metrics = make_metrics(make_settings())
    assert type(metrics) is Metrics
    metrics.incr("anything")  # does nothing, raises nothing


def test_unreachable_collector_never_raises() -> None:
    metrics = StatsdMetrics("127.0.0.1", 9)  # discard port: nobody listens
    for _ in range(100):
        metrics.incr("x")
    metrics.close()


def test_api_requests_are_counted_by_key(
    backend: object, seed: Seeder, make_settings: Callable[..., Settings], collector: socket.socket
) -> None:
    seed.api_key("test")
    settings = make_settings(
        DB_READONLY_URI=seed.engine.url.render_as_string(hide_password=False),
        REDIS_URI=backend.redis_url,  # type: ignore[attr-defined]
        STATSD_HOST="127.0.0.1",
        STATSD_PORT=str(collector.getsockname()[1]),
    )
    with TestClient(create_app(settings), client=PROXY_PEER) as client:
        assert client.post("/v1/geolocate?key=test", json={}, headers=LONDON).status_code == 200
        assert client.post("/v1/geolocate?key=invalid_key", json={}).status_code == 400
        assert client.post("/v1/geolocate?key=abcdefg", json={}).status_code == 400
        assert client.post("/v1/country?key=test", json={}, headers=LONDON).status_code == 200
        assert client.get("/no/such/path").status_code == 404
    lines = received(collector)
    assert "location.locate.request:1|c|#path:v1.geolocate,key:test" in lines
    assert "location.locate.request:1|c|#path:v1.geolocate,key:none" in lines
    assert "location.locate.request:1|c|#path:v1.geolocate,key:invalid" in lines
    assert "location.region.request:1|c|#path:v1.country,key:test" in lines
    assert (
        "location.locate.result:1|c|#key:test,fallback_allowed:false,accuracy:low,"
        "status:hit,source:geoip" in lines
    )
    assert "location.request:1|c|#path:v1.geolocate,method:post,status:200" in lines
    assert "location.request:1|c|#path:unknown,method:get,status:404" in lines
    assert any(line.startswith("location.request.timing:") for line in lines)


def test_24_database_down_counts_no_key(
    make_settings: Callable[..., Settings], redis_server_url: str, collector: socket.socket
) -> None:
    settings = make_settings(
        DB_READONLY_URI="mysql://root@127.0.0.1:1/location",
        REDIS_URI=redis_server_url,
        STATSD_HOST="127.0.0.1",
        STATSD_PORT=str(collector.getsockname()[1]),
    )
    with TestClient(create_app(settings), client=PROXY_PEER) as client:
        assert client.post("/v1/geolocate?key=test", json={}, headers=LONDON).status_code == 200
    lines = received(collector)
    assert lines, "the request itself is still counted"
    assert not [line for line in lines if "key:" in line]
