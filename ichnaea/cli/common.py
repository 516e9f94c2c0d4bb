"""Helpers shared by the CLI commands: settings, logging and Sentry set-up."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from ichnaea.config import ConfigError, Settings, load_settings
from ichnaea.logging import configure_logging
from ichnaea.repositories.drivers import MissingDriverError, require_driver

if TYPE_CHECKING:
    from ichnaea.broker.embedded import EmbeddedRedis

log = logging.getLogger("ichnaea")


def start_role(role: str) -> Settings:
    """Load the settings (a config error exits with its message) and set up logging/Sentry."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from exc
    try:
        for url in {settings.db_readonly_url, settings.db_readwrite_url, settings.db_ddl_url}:
            require_driver(url)
    except MissingDriverError as exc:
        raise click.ClickException(str(exc)) from exc
    configure_logging(settings.logging_level, role=role)
    if settings.sentry_dsn:
        import sentry_sdk

        sentry_sdk.init(
            dsn=settings.sentry_dsn,
            environment=settings.sentry_environment or None,
            release=__import__("ichnaea").__version__,
        )
    return settings


def log_embedded_defaults(settings: Settings) -> None:
    used = settings.embedded_defaults()
    if not used:
        log.info("no embedded defaults in use")
    for default in used:
        log.info("embedded default in use: %s", default)


def start_embedded_redis(settings: Settings) -> EmbeddedRedis | None:
    """The data directory's embedded Redis (reused or started); None when Redis is configured."""
    if not settings.redis_embedded:
        return None
    # Imported here: it imports redis-py, which a role with Redis configured
    # (the worker pool's supervisor) otherwise never needs.
    from ichnaea.broker.embedded import EmbeddedRedisError, ensure_embedded_redis

    try:
        return ensure_embedded_redis(settings.data_dir)
    except EmbeddedRedisError as exc:
        raise click.ClickException(str(exc)) from exc


@contextmanager
def _embedded_redis_running(settings: Settings) -> Iterator[None]:
    server = start_embedded_redis(settings)
    try:
        yield
    finally:
        if server is not None:
            server.stop()  # a no-op when another process (serve, web, worker) runs it


def use_embedded_redis(settings: Settings) -> None:
    """Let a one-off command (import, replay, status...) work on the embedded defaults.

    With no Redis configured, the command uses the embedded server that
    ``serve`` or a role runs in the data directory, or starts one for as
    long as the command runs (its append-only file keeps what the command
    queued for the next start).
    """
    click.get_current_context().with_resource(_embedded_redis_running(settings))


class Progress:
    """Progress of a long command on stderr: a live line on a tty, else a line every 10 s.

    ``advance(n, position=None)`` adds ``n`` units; ``position`` (e.g. bytes
    read of ``total``) gives the percentage when the total is known.
    """

    def __init__(self, label: str, *, unit: str = "rows", total: int | None = None) -> None:
        self.label = label
        self.unit = unit
        self.total = total
        self.done = 0
        self.position = 0
        self._started = time.monotonic()
        self._live = sys.stderr.isatty()
        # A terminal line shows at once; log lines start after the first interval.
        self._shown = 0.0 if self._live else self._started

    def _line(self) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        text = f"{self.label}: {self.done:,} {self.unit} ({self.done / elapsed:,.0f}/s)"
        if self.total:
            text += f", {min(self.position / self.total, 1.0):.0%}"
        return text

    def advance(self, n: int, position: int | None = None) -> None:
        self.done += n
        if position is not None:
            self.position = position
        now = time.monotonic()
        if now - self._shown >= (0.2 if self._live else 10.0):
            self._shown = now
            click.echo(("\r" if self._live else "") + self._line(), err=True, nl=not self._live)

    def finish(self) -> str:
        """End the live line; return the final summary line."""
        if self._live and self._shown:
            click.echo("", err=True)
        elapsed = time.monotonic() - self._started
        return f"{self.label}: {self.done:,} {self.unit} in {elapsed:.1f} s"
