"""Metrics: StatsD over UDP with Datadog-style tags, prefixed ``location.``.

``make_metrics(settings)`` returns a real client when ``STATSD_HOST`` is
set and a no-op one otherwise, so callers never check. Sending never
raises and never blocks: a full socket buffer or an unreachable collector
drops the datagram (metrics must not take the service down).

Line format: ``location.<name>:<value>|<type>|#tag:value,tag:value``.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Mapping

from ichnaea.config import Settings

log = logging.getLogger(__name__)

PREFIX = "location"


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
    enabled = True

    def __init__(self, host: str, port: int, *, prefix: str = PREFIX) -> None:
        self.prefix = prefix
        # Resolve once: a name lookup per datagram would block the event loop.
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        self._address = address
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def _emit(self, name: str, body: str, tags: Mapping[str, str] | None) -> None:
        line = f"{self.prefix}.{name}:{body}"
        if tags:
            line += "|#" + ",".join(f"{k}:{v}" for k, v in tags.items())
        with contextlib.suppress(OSError):  # dropped: see the module docstring
            self._sock.sendto(line.encode(), self._address)

    def close(self) -> None:
        self._sock.close()


def make_metrics(settings: Settings) -> Metrics:
    if not settings.statsd_host:
        return Metrics()
    try:
        return StatsdMetrics(settings.statsd_host, settings.statsd_port)
    except OSError as exc:
        log.error("statsd disabled: cannot open a socket for %s (%s)", settings.statsd_host, exc)
        return Metrics()
