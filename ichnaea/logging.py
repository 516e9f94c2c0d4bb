"""Logging set-up shared by every role: one line per event on stderr.

Each line carries the time, level, process role and logger name, so the
combined output of ``ichnaea serve`` (web + worker + scheduler) can be told
apart at 3 a.m.
"""

from __future__ import annotations

import logging
import sys

# Loggers whose INFO lines say nothing to an operator: alembic logs one
# "setup plugin" line per built-in autogenerate plugin whenever a role first
# imports it (seven lines at every start of the web role).
QUIET_LOGGERS = {"alembic.runtime.plugins": logging.WARNING}


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
    for name, quiet_level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(quiet_level)
