"""What the load scripts share to run a server: a fresh database, a free port, readiness.

The scripts run as ``python benchmarks/<script>.py``, so this folder is on
``sys.path`` and they import it as ``_servers``.
"""

from __future__ import annotations

import socket
import sys
import time

import httpx
import sqlalchemy as sa

from ichnaea.config import Settings
from ichnaea.migrate import migrate


def fresh_database(settings: Settings) -> None:
    """Drop the configured MySQL database and migrate a new one (progress on stderr)."""
    server_url, name = settings.db_ddl_url.rsplit("/", 1)
    admin = sa.create_engine(server_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name.split('?')[0]}`")
    admin.dispose()
    migrate(settings, echo=lambda line: print(line, file=sys.stderr))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(port: int, timeout_s: float = 60) -> None:
    """Wait until ``/__lbheartbeat__`` on ``port`` answers 200."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /__lbheartbeat__ HTTP/1.1\r\nHost: x\r\n\r\n")
                if sock.recv(100).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("ichnaea web did not start")


def wait_for_index(port: int, processes: int, timeout_s: float = 600) -> None:
    """Wait until ``/__heartbeat__`` reports the station index up, ``processes`` times in a row.

    Each answer comes from one web process; asking several times in a row
    makes it likely every process has mapped the index.
    """
    deadline = time.monotonic() + timeout_s
    in_a_row = 0
    while time.monotonic() < deadline:
        body = httpx.get(f"http://127.0.0.1:{port}/__heartbeat__", timeout=10).json()
        in_a_row = in_a_row + 1 if body.get("station_index", {}).get("up") else 0
        if in_a_row >= 4 * processes:
            return
        time.sleep(0.05)
    raise RuntimeError(f"the station index was not up after {timeout_s} s")
