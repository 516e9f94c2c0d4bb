"""Metrics: StatsD over UDP with Datadog-style tags, prefixed ``location.``.

``make_metrics(settings)`` returns a real client when ``STATSD_HOST`` is
set and a no-op one otherwise, so callers never check. Sending never
raises and never blocks: a full socket buffer or an unreachable collector
drops the datagram (metrics must not take the service down).

Line format: ``location.<name>:<value>|<type>|#tag:value,tag:value``.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import socket
import threading
from collections.abc import Mapping

from ichnaea.config import Settings

log = logging.getLogger(__name__)

PREFIX = "location"
# The largest datagram: below the usual Ethernet MTU, as the StatsD agents advise.
MAX_DATAGRAM_BYTES = 1432


class Metrics:
    """A StatsD client; the base class itself sends nothing."""

    # False for a client that sends nothing: hot paths skip building tags.
    enabled = False

    def incr(self, name: str, value: int = 1, tags: Mapping[str, str] | None = None) -> None:
        self._emit(name, f"{value}|c", tags)

    def timing(self, name: str, ms: float, tags: Mapping[str, str] | None = None) -> None:
        self._emit(name, f"{ms:.3f}|ms", tags)

    def gauge(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        self._emit(name, f"{value}|g", tags)

    def _emit(self, name: str, body: str, tags: Mapping[str, str] | None) -> None:
        pass

    def close(self) -> None:
        pass


class StatsdMetrics(Metrics):
    """Lines gathered and sent several to a datagram, newline-separated (the StatsD and
    DogStatsD agents read them so): a web process counts five or six metrics
    per request, and a system call for each was a measurable share of it.

    A datagram goes out when the next line would pass ``MAX_DATAGRAM_BYTES``,
    whatever is gathered at most ``flush_interval_s`` later (a flusher
    thread), and on ``close``, which also runs at exit: a command's last
    counts are sent.
    """

    enabled = True

    def __init__(
        self, host: str, port: int, *, prefix: str = PREFIX, flush_interval_s: float = 0.1
    ) -> None:
        self.prefix = prefix
        # Resolve once: a name lookup per datagram would block the event loop.
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        self._address = address
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._lock = threading.Lock()
        self._lines: list[bytes] = []
        self._size = 0
        self._stopped = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_periodically, args=(flush_interval_s,), name="statsd", daemon=True
        )
        self._flusher.start()
        atexit.register(self.close)

    def _emit(self, name: str, body: str, tags: Mapping[str, str] | None) -> None:
        line = f"{self.prefix}.{name}:{body}"
        if tags:
            line += "|#" + ",".join(f"{k}:{v}" for k, v in tags.items())
        data = line.encode()
        with self._lock:
            if self._lines and self._size + 1 + len(data) > MAX_DATAGRAM_BYTES:
                self._send_locked()
            self._lines.append(data)
            self._size += len(data) + (1 if len(self._lines) > 1 else 0)

    def flush(self) -> None:
        with self._lock:
            if self._lines:
                self._send_locked()

    def _send_locked(self) -> None:
        datagram = b"\n".join(self._lines)
        self._lines, self._size = [], 0
        with contextlib.suppress(OSError):  # dropped: see the module docstring
            self._sock.sendto(datagram, self._address)

    def _flush_periodically(self, interval_s: float) -> None:
        while not self._stopped.wait(interval_s):
            self.flush()

    def close(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.flush()
        self._sock.close()
        atexit.unregister(self.close)


def make_metrics(settings: Settings) -> Metrics:
    if not settings.statsd_host:
        return Metrics()
    try:
        return StatsdMetrics(settings.statsd_host, settings.statsd_port)
    except OSError as exc:
        log.error("statsd disabled: cannot open a socket for %s (%s)", settings.statsd_host, exc)
        return Metrics()
