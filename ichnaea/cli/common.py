"""Helpers shared by the CLI commands: settings, logging and Sentry set-up."""

from __future__ import annotations

import logging

import click

from ichnaea.config import ConfigError, Settings, load_settings
from ichnaea.logging import configure_logging

log = logging.getLogger("ichnaea")


def start_role(role: str) -> Settings:
    """Load the settings (a config error exits with its message) and set up logging/Sentry."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from exc
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
