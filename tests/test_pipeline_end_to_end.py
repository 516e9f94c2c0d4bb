"""Learn stations end to end: a running web server, ``ichnaea process``, then locate.

The real ``ichnaea web`` process answers over a socket, on MariaDB and the
Redis server, and on SQLite and the embedded Redis. Reports posted to
``/v2/geosubmit`` are processed by the real ``ichnaea process`` command,
and ``/v1/geolocate`` then answers from the stations the pipeline learned.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from ichnaea.models.all import metadata
from ichnaea.repositories.session import create_engine
from tests.fixtures_app import TEST_GEOIP, Backend
from tests.test_end_to_end import free_port

# Also on a Redis Cluster (the outbox of ichnaea.broker.outbox carries the output).
pytestmark = [pytest.mark.slow, pytest.mark.redis_cluster]

MACS = ["a0b1c2d3e4f5", "a0b1c2d3e4f6", "a0b1c2d3e4f7"]


def wipe(db_url: str) -> None:
    engine = create_engine(db_url, pooled=False)
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            if table.name not in ("alembic_version", "export_config"):
                conn.execute(table.delete())
        conn.execute(sa.text("DELETE FROM export_config WHERE name != 'internal'"))
        conn.execute(
            metadata.tables["api_key"].insert().values(valid_key="e2etest", allow_locate=True)
        )
    engine.dispose()


def role_env(backend: Backend, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of an ``ichnaea`` role process on ``backend``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DB_", "REDIS_", "GEOIP_"))
    }
    env.update(
        DB_READONLY_URI=backend.db_url,
        DB_READWRITE_URI=backend.db_url,
        REDIS_URI=backend.redis_url,
        GEOIP_PATH=str(TEST_GEOIP),
        ICHNAEA_DATA_DIR=str(data_dir),
        **extra,
    )
    return env


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """SIGTERM, then SIGKILL if the process does not stop in time."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def server_env(backend: Backend, tmp_path: Path) -> Iterator[dict[str, str]]:
    wipe(backend.db_url)
    yield role_env(backend, tmp_path / "data")
    wipe(backend.db_url)


def wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/__lbheartbeat__", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"server did not come up:\n{log.read_text()}")


def test_geosubmit_then_process_then_geolocate(server_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        web = subprocess.Popen(
            [sys.executable, "-m", "ichnaea", "web", "--port", str(port), "--processes", "1"],
            env=server_env,
            stdout=out,
            stderr=out,
        )
    try:
        wait_until_up(url, web, log)
        before = httpx.post(
            f"{url}/v1/geolocate?key=e2etest",
            json={"wifiAccessPoints": [{"macAddress": m} for m in MACS], "considerIp": False},
            timeout=10,
        )
        assert before.status_code == 404, before.text  # nothing learned yet
        reports = [
            {
                "position": {"latitude": 51.5 + i * 1e-5, "longitude": -0.1, "accuracy": 10},
                "wifiAccessPoints": [{"macAddress": m, "signalStrength": -70} for m in MACS],
            }
            for i in range(5)
        ]
        submitted = httpx.post(
            f"{url}/v2/geosubmit?key=e2etest", json={"items": reports}, timeout=10
        )
        assert submitted.status_code == 200, submitted.text

        processed = subprocess.run(
            [sys.executable, "-m", "ichnaea", "process", "--quiet"],
            env=server_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert processed.returncode == 0, processed.stderr
        assert "queues empty" in processed.stdout

        answer = httpx.post(
            f"{url}/v1/geolocate?key=e2etest",
            json={"wifiAccessPoints": [{"macAddress": m} for m in MACS], "considerIp": False},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        location = answer.json()["location"]
        assert abs(location["lat"] - 51.50002) < 1e-4
        assert abs(location["lng"] - -0.1) < 1e-4
    finally:
        stop(web)
