"""README command 1's server process, over a real socket."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests._support import embedded_env

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_answers_heartbeat_with_embedded_defaults(tmp_path: Path) -> None:
    port = free_port()
    env = embedded_env(
        tmp_path / "d",
        PORT=str(port),
        WEB_PROCESSES="1",
        WORKER_PROCESSES="1",
    )
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ichnaea", "serve"], env=env, stdout=log, stderr=log
        )
        try:
            body = None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    response = httpx.get(f"http://127.0.0.1:{port}/__heartbeat__", timeout=5)
                except httpx.TransportError:
                    time.sleep(0.25)
                    continue
                body = response.json()
                if response.status_code == 200:
                    break
                time.sleep(0.25)
            assert body is not None, log_path.read_text()
            assert body["database"]["up"] is True, body
            assert body["redis"]["up"] is True, body
            assert body["geoip"]["up"] is True, body
            assert body["database"]["alembic_version"] != "unknown"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
    output = log_path.read_text()
    assert "embedded default in use: database: SQLite" in output
    assert "embedded default in use: redis: embedded server" in output
    assert "embedded default in use: geoip: DB-IP City Lite" in output
    assert code == 0, output
    # serve owned the embedded Redis and stopped it.
    assert not (tmp_path / "d" / "redis.sock").exists() or not _answers(
        tmp_path / "d" / "redis.sock"
    )


def _answers(sock_path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as sock:
        try:
            sock.connect(str(sock_path))
        except OSError:
            return False
        return True
