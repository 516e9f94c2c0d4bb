"""The web role on a MariaDB replica: fresh answers though the replica lags, and its state shown.

A real primary and replica (``tests.scaleout.servers``) with replication
delayed by one second (``MASTER_DELAY``): the pipeline commits to the
primary and announces the changed stations at once, so a web process that
reads the announced rows from the replica finds them missing or old. It
reads them again until they are as new as announced
(``ichnaea.index.live``), and answers from the new state within the 2 s
the service promises; without that re-read it does not (the control).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

import ichnaea.web.lifespan
from ichnaea.config import Settings
from tests._support import backend_unavailable
from tests.fixtures_pipeline import Pipeline
from tests.index.test_freshness import FRESHNESS_S, MACS, OLD, _locate, _reports, _wait_for_index
from tests.scaleout.servers import MariaDBPrimaryReplica, ServerStartError, missing_binaries

pytestmark = [pytest.mark.slow, pytest.mark.scaleout]

DELAY_S = 1


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBPrimaryReplica]:
    missing = missing_binaries(*MariaDBPrimaryReplica.BINARIES)
    if missing:
        backend_unavailable(f"not installed: {', '.join(missing)}")
    base = tmp_path_factory.mktemp("replica")
    try:
        servers = MariaDBPrimaryReplica(base).start()
    except ServerStartError as exc:
        backend_unavailable(f"could not start a MariaDB primary and replica: {exc}")
    try:
        env = {"DB_DDL_URI": servers.url("location"), "ICHNAEA_DATA_DIR": str(base / "setup")}
        env["DB_READWRITE_URI"] = env["DB_DDL_URI"]
        done = subprocess.run(
            [sys.executable, "-m", "ichnaea", "migrate"],
            env={**env, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        servers.wait_for_replica()
        servers.delay_replication(DELAY_S)
        yield servers
    finally:
        servers.stop()


@pytest.fixture
def app_settings(
    pair: MariaDBPrimaryReplica,
    redis_server_url: str,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> Settings:
    # No stations of an earlier test, on the replica too, before the app
    # builds its index from it.
    primary = sa.create_engine(pair.url("location"))
    with primary.begin() as conn:
        for shard in range(16):
            conn.execute(sa.text(f"DELETE FROM wifi_shard_{shard:x}"))
    primary.dispose()
    deadline = time.monotonic() + 30
    while replica_rows(pair) and time.monotonic() < deadline:
        time.sleep(0.1)
    return make_settings(
        DB_READONLY_URI=pair.url("location", replica=True),
        DB_READWRITE_URI=pair.url("location"),
        REDIS_URI=redis_server_url,
        STATION_INDEX="true",
        STATION_INDEX_DIR=str(tmp_path / "index"),
    )


def replica_rows(pair: MariaDBPrimaryReplica) -> int:
    engine = sa.create_engine(pair.url("location", replica=True))
    try:
        with engine.connect() as conn:
            return sum(
                int(
                    conn.execute(sa.text(f"SELECT COUNT(*) FROM wifi_shard_{shard:x}")).scalar()
                    or 0
                )
                for shard in range(16)
            )
    finally:
        engine.dispose()


def answered_within(client: TestClient, limit_s: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started <= limit_s:
        if _locate(client).status_code == 200:
            return time.monotonic() - started
        time.sleep(0.01)
    return None


def learn(pipeline: Pipeline, client: TestClient, pair: MariaDBPrimaryReplica) -> float | None:
    pipeline.api_key("test")
    _wait_for_index(client)
    time.sleep(DELAY_S + 0.5)  # the key reaches the replica
    assert _locate(client).status_code == 404
    pipeline.submit(_reports(*OLD, count=4))
    pipeline.run()
    # The primary has the stations, the replica not yet: the announcement
    # overtook the replica.
    assert replica_rows(pair) == 0
    return answered_within(client, FRESHNESS_S)


def test_a_lagging_replica_is_read_again_until_it_has_the_announced_rows(
    client: TestClient, pipeline: Pipeline, pair: MariaDBPrimaryReplica
) -> None:
    waited = learn(pipeline, client, pair)
    assert waited is not None, f"not answered within {FRESHNESS_S} s"
    print(f"answered {waited:.2f} s after the pipeline finished, replica {DELAY_S} s behind")
    database = client.get("/__heartbeat__").json()["database"]
    assert database["up"] is True
    assert database["replica"]["running"] is True
    assert isinstance(database["replica"]["lag_s"], int)
    assert len(MACS) == 3


@pytest.fixture
def without_reread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ichnaea.web.lifespan, "REPLICA_WAIT_S", 0.0)


def test_without_the_reread_the_answer_waits_for_the_catch_up(
    without_reread: None, client: TestClient, pipeline: Pipeline, pair: MariaDBPrimaryReplica
) -> None:
    # The control: the same steps, the re-read off. The first read found
    # nothing, and nothing reads the stations again before the catch-up.
    assert learn(pipeline, client, pair) is None
