"""Role commands as an operator runs them: server settings, real processes, signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner

from ichnaea.__main__ import cli
from ichnaea.web import serve as serve_module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
def test_web_stopped_by_sigterm_stops_the_embedded_redis_it_started(tmp_path: Path) -> None:
    port = free_port()
    env = dict(os.environ, ICHNAEA_DATA_DIR=str(tmp_path), PORT=str(port), WEB_PROCESSES="1")
    for name in ("REDIS_URI", "REDIS_HOST", "DB_READWRITE_URI", "DB_HOST"):
        env.pop(name, None)
    web = subprocess.Popen(
        [sys.executable, "-m", "ichnaea", "web"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/__lbheartbeat__", timeout=1)
                break
            except OSError:
                assert web.poll() is None and time.monotonic() < deadline, "web did not start"
                time.sleep(0.2)
        embedded = redis.Redis(unix_socket_path=str(tmp_path / "redis.sock"))
        assert embedded.ping()

        web.send_signal(signal.SIGTERM)
        assert web.wait(timeout=30) == 0

        with pytest.raises(redis.ConnectionError):
            redis.Redis(unix_socket_path=str(tmp_path / "redis.sock"), retry=None).ping()
    finally:
        if web.poll() is None:
            web.kill()
            web.wait()
        # Leave no server behind if the test failed.
        sock = tmp_path / "redis.sock"
        if sock.exists():
            redis.Redis(unix_socket_path=str(sock), retry=None).shutdown(nosave=True)


def test_web_leaves_forwarded_headers_to_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # uvicorn would otherwise rewrite the peer address from X-Forwarded-For by
    # its own rules before ichnaea.api.context applies FORWARDED_ALLOW_IPS.
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(serve_module, "serve", lambda *args, **kwargs: calls.append(kwargs))
    env = {
        "ICHNAEA_DATA_DIR": str(tmp_path),
        "REDIS_URI": "redis://127.0.0.1:1/0",
        "FORWARDED_ALLOW_IPS": "10.0.0.0/8",
    }
    result = CliRunner().invoke(cli, ["web"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert len(calls) == 1 and calls[0]["proxy_headers"] is False


@pytest.mark.slow
def test_web_processes_each_take_connections_from_the_first_burst(tmp_path: Path) -> None:
    """Each process listens on its own SO_REUSEPORT socket (ichnaea.web.serve): a burst of
    keep-alive connections, as a load balancer or a benchmark opens them, spreads over the
    processes instead of landing on whichever accepted first."""
    port = free_port()
    log = tmp_path / "web.log"
    env = dict(os.environ, ICHNAEA_DATA_DIR=str(tmp_path), PORT=str(port), STATION_INDEX="false")
    for name in ("REDIS_URI", "REDIS_HOST", "DB_READWRITE_URI", "DB_HOST"):
        env.pop(name, None)
    with log.open("wb") as out:
        web = subprocess.Popen(
            [sys.executable, "-m", "ichnaea", "web", "--processes", "2"],
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        deadline = time.monotonic() + 90
        while "Application startup complete" not in log.read_text() or (
            log.read_text().count("Application startup complete") < 2
        ):
            assert web.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
        # 32 connections at once, each asking once; every request is logged
        # by the process that answered it, as [web:PID].
        connections = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(32)]
        for sock in connections:
            sock.sendall(b"GET /__version__ HTTP/1.1\r\nHost: x\r\n\r\n")
        for sock in connections:
            assert sock.recv(1000).startswith(b"HTTP/1.1 200")
            sock.close()
        web.send_signal(signal.SIGTERM)
        assert web.wait(timeout=60) == 0
        lines = [line for line in log.read_text().splitlines() if "GET /__version__" in line]
        pids = [line.split("[web:", 1)[1].split("]", 1)[0] for line in lines]
        assert len(pids) == 32
        counts = sorted(pids.count(pid) for pid in set(pids))
        # Both processes served; by the kernel's hash, not all-or-nothing.
        assert len(counts) == 2 and counts[0] >= 4, counts
    finally:
        if web.poll() is None:
            web.kill()
            web.wait()
        sock_path = tmp_path / "redis.sock"
        if sock_path.exists():
            redis.Redis(unix_socket_path=str(sock_path), retry=None).shutdown(nosave=True)


def test_web_refuses_a_port_another_server_listens_on(caplog: pytest.LogCaptureFixture) -> None:
    """As uvicorn's shared socket would: SO_REUSEPORT must not let a second server (an old
    `ichnaea web` left running) quietly take half the connections."""
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(SystemExit) as exited:
            serve_module.serve(
                "ichnaea.web.asgi:create_app_from_env", host="127.0.0.1", port=port, processes=2
            )
    assert exited.value.code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in caplog.text
