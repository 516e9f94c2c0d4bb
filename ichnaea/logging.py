"""Logging set-up shared by every role: one line per event on stderr.

Each line carries the time, level, process role and logger name, so the
combined output of ``ichnaea serve`` (web + worker + scheduler) can be told
apart at 3 a.m.
"""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str = "INFO", *, role: str = "ichnaea") -> None:
    """Configure the root logger for this process (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            f"%(asctime)s %(levelname)-7s [{role}:%(process)d] %(name)s: %(message)s",
            datefmt="%Y-%m-%dT%H:%M:%S",
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
