"""Shutdown requests from SIGTERM/SIGINT, safe to set from a signal handler.

A signal handler must not take a lock the interrupted code may hold (as
``threading.Event.set`` and ``multiprocessing.Event.set`` do), so the handler
only flips a boolean; ``wait`` polls it in short sleeps. The object offers
``is_set``/``wait`` like an Event, so loops accept either.
"""

from __future__ import annotations

import signal
import time
from types import FrameType
from typing import Protocol

POLL_S = 0.1


class StopSignal(Protocol):
    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class ShutdownFlag:
    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None

    def install(self) -> ShutdownFlag:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        self.signum = signum

    def set(self) -> None:
        self.requested = True

    def is_set(self) -> bool:
        return self.requested

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.requested:
            remaining = POLL_S if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(POLL_S, remaining))
        return self.requested
