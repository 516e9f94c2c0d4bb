"""A running Ichnaea for one world: migrate, an API key, ``ichnaea web``, ``ichnaea process``.

On the embedded defaults (the default) every world gets a fresh temporary
``ICHNAEA_DATA_DIR``: SQLite, and the embedded Redis, which this module
starts itself (``ichnaea.broker.embedded``) so that it outlives restarts of the
web role and is stopped exactly once, here. With ``mysql_url`` and
``redis_url`` the world goes to that server instead: the database named in
the URL is dropped and migrated again, the Redis database flushed.

Commands run as subprocesses of ``python -m ichnaea`` with a clean
environment, as the tests do: no ``DB_*``, ``REDIS_*``, ``GEOIP_*`` or
``ASSET_*`` variable of the caller leaks in.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx
import redis
import sqlalchemy as sa

from ichnaea.broker.embedded import EmbeddedRedis, ensure_embedded_redis

API_KEY = "accuracy"
COMMAND_TIMEOUT_S = 900.0
START_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Service:
    """One service for one world; use as a context manager."""

    mysql_url: str | None = None
    redis_url: str | None = None
    log: list[str] = field(default_factory=list)
    port: int = 0
    _data_dir: Path | None = None
    _redis: EmbeddedRedis | None = None
    _web: subprocess.Popen[bytes] | None = None
    _web_log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_url(self) -> str:
        """The database the service writes (for reading it in-process)."""
        assert self._data_dir is not None
        return self.mysql_url or f"sqlite:///{self._data_dir / 'ichnaea.sqlite'}"

    def env(self) -> dict[str, str]:
        assert self._data_dir is not None
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DB_", "REDIS_", "GEOIP_", "SQLALCHEMY_", "ASSET_", "MAP_"))
        }
        env.update(
            ICHNAEA_DATA_DIR=str(self._data_dir),
            PORT=str(self.port),
            WEB_PROCESSES="1",
            WORKER_PROCESSES="1",
            LOGGING_LEVEL="WARNING",
            REQUEST_LOG="false",
        )
        if self.mysql_url:
            env["DB_READWRITE_URI"] = self.mysql_url
        if self.redis_url:
            env["REDIS_URI"] = self.redis_url
        return env

    def __enter__(self) -> Service:
        # A short path: the embedded Redis socket must fit in 107 bytes.
        self._data_dir = Path(tempfile.mkdtemp(prefix="ichnaea-acc-"))
        self.port = free_port()
        try:
            if self.mysql_url:
                self._drop_mysql_database()
            if self.redis_url:
                redis.Redis.from_url(self.redis_url).flushdb()
            else:
                self._redis = ensure_embedded_redis(self._data_dir)
            self.run("migrate")
            self.run("apikey", "create", API_KEY, "--maxreq", "0", "--store-sample-locate", "0")
            self.start_web()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_web()
        if self._redis is not None:
            self._redis.stop()
            self._redis = None
        if self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None

    def _drop_mysql_database(self) -> None:
        assert self.mysql_url is not None
        server_url, name = self.mysql_url.rsplit("/", 1)
        engine = sa.create_engine(server_url)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name.split('?')[0]}`")
        engine.dispose()

    def run(self, *args: str) -> str:
        """Run ``ichnaea ARGS`` to completion; its output, or RuntimeError with it."""
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "ichnaea", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
        )
        output = done.stdout + done.stderr
        if done.returncode != 0:
            raise RuntimeError(f"ichnaea {' '.join(args)} failed:\n{output}")
        self.log.append(f"ichnaea {' '.join(args)}: {time.monotonic() - started:.1f} s")
        return output

    def start_web(self) -> None:
        """Start ``ichnaea web`` and wait until it answers and its station index is up."""
        assert self._data_dir is not None
        self._web_log = self._data_dir / "web.log"
        with self._web_log.open("ab") as log:
            self._web = subprocess.Popen(
                [sys.executable, "-m", "ichnaea", "web"], env=self.env(), stdout=log, stderr=log
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._web.poll() is not None:
                raise RuntimeError(f"ichnaea web exited:\n{self._web_log.read_text()}")
            try:
                body = httpx.get(f"{self.url}/__heartbeat__", timeout=5).json()
            except (httpx.TransportError, ValueError):
                time.sleep(0.2)
                continue
            index = body.get("station_index")
            if index is None or index.get("up"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"ichnaea web did not start:\n{self._web_log.read_text()}")

    def stop_web(self) -> None:
        if self._web is None:
            return
        self._web.send_signal(signal.SIGTERM)
        try:
            self._web.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self._web.kill()
            self._web.wait()
        self._web = None

    def restart_web(self) -> None:
        """A new web process: its station index is built from the database as it is now."""
        self.stop_web()
        self.start_web()
