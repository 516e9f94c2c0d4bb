"""A circuit breaker: stop calling a backend for a while after it failed.

When the database is down, every request would otherwise wait for a
connection attempt (up to the connect timeout) before degrading. After a
failure the breaker stays *open* for ``cooldown_s`` seconds, during which
callers skip the backend at once; the first call after that tries again.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    def __init__(self, *, cooldown_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._open_until = 0.0

    @property
    def closed(self) -> bool:
        """True when the backend may be called."""
        return self._clock() >= self._open_until

    def failed(self) -> None:
        self._open_until = self._clock() + self.cooldown_s

    def succeeded(self) -> None:
        self._open_until = 0.0
