"""``ichnaea apikey``: create, list, show, update and delete API keys."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy.orm import Session

from ichnaea.cli.common import start_role
from ichnaea.repositories import api_keys
from ichnaea.repositories.session import create_engine, make_sessionmaker

FALLBACK_SCHEMAS = ("ichnaea/v1", "combain/v1", "googlemaps/v1", "unwiredlabs/v1")

# Display order of `show`, and the columns `list` prints.
FIELDS = (
    "valid_key", "maxreq", "allow_fallback", "allow_locate", "allow_region",
    "fallback_name", "fallback_schema", "fallback_url", "fallback_ratelimit",
    "fallback_ratelimit_interval", "fallback_cache_expire",
    "store_sample_locate", "store_sample_submit",
)  # fmt: skip
LIST_FIELDS = ("valid_key", "maxreq", "allow_fallback", "allow_locate", "allow_region")

KEY_PATTERN = r"^[-0-9a-zA-Z]{4,40}$"


# (flag, column, click options) for every settable api_key column.
KEY_OPTIONS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("--maxreq", "maxreq",
     {"type": click.IntRange(0), "help": "Daily requests per API path; 0 is unlimited."}),
    ("--allow-locate/--no-allow-locate", "allow_locate", {"help": "May call /v1/geolocate."}),
    ("--allow-region/--no-allow-region", "allow_region", {"help": "May call /v1/country."}),
    ("--allow-fallback/--no-allow-fallback", "allow_fallback",
     {"help": "May use the external fallback provider."}),
    ("--store-sample-locate", "store_sample_locate",
     {"type": click.IntRange(0, 100), "help": "Percent of locate queries stored as reports."}),
    ("--store-sample-submit", "store_sample_submit",
     {"type": click.IntRange(0, 100), "help": "Percent of submissions stored."}),
    ("--fallback-name", "fallback_name",
     {"help": "Fallback provider name (cache and rate-limit partition)."}),
    ("--fallback-schema", "fallback_schema",
     {"type": click.Choice(FALLBACK_SCHEMAS), "help": "Fallback provider protocol."}),
    ("--fallback-url", "fallback_url", {"help": "Fallback provider URL."}),
    ("--fallback-ratelimit", "fallback_ratelimit",
     {"type": click.IntRange(0), "help": "Fallback requests per interval; 0 is unlimited."}),
    ("--fallback-ratelimit-interval", "fallback_ratelimit_interval",
     {"type": click.IntRange(0), "help": "Fallback rate-limit interval in seconds."}),
    ("--fallback-cache-expire", "fallback_cache_expire",
     {"type": click.IntRange(0), "help": "Seconds fallback answers may be cached; 0: no cache."}),
)  # fmt: skip


def _key_fields(
    defaults: dict[str, Any],
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Add a flag per api_key column; a column missing from ``defaults`` defaults to None."""

    def decorate(func: Callable[..., None]) -> Callable[..., None]:
        for flag, column, kwargs in reversed(KEY_OPTIONS):
            func = click.option(flag, column, default=defaults.get(column), **kwargs)(func)
        return func

    return decorate


CREATE_DEFAULTS = {
    "maxreq": 100,
    "allow_locate": True,
    "allow_region": True,
    "allow_fallback": False,
    "store_sample_locate": 100,
    "store_sample_submit": 100,
}


@contextmanager
def _session() -> Iterator[Session]:
    settings = start_role("apikey")
    engine = create_engine(settings.db_readwrite_url)
    try:
        with make_sessionmaker(engine)() as session, session.begin():
            yield session
    finally:
        engine.dispose()


def _check_key(key: str) -> str:
    import re

    if not re.match(KEY_PATTERN, key):
        raise click.BadParameter(
            "an API key is 4 to 40 letters, digits and dashes", param_hint="KEY"
        )
    return key


@click.group()
def apikey() -> None:
    """Manage API keys."""


@apikey.command()
@click.argument("key", required=False)
@_key_fields(CREATE_DEFAULTS)
def create(key: str | None, **fields: Any) -> None:
    """Create KEY (a random UUID when omitted)."""
    key = _check_key(key) if key else str(uuid.uuid4())
    with _session() as session:
        created = api_keys.create_api_key(session, valid_key=key, **fields)
    if created:
        click.echo(f"Created API key: {key!r}")
    else:
        raise click.ClickException(f"API key {key!r} exists")


@apikey.command("list")
def list_keys() -> None:
    """List the API keys."""
    with _session() as session:
        rows = api_keys.list_api_keys(session)
        click.echo(f"{len(rows)} api keys.")
        if rows:
            table = [LIST_FIELDS] + [tuple(str(getattr(r, f)) for f in LIST_FIELDS) for r in rows]
            widths = [max(len(row[i]) for row in table) for i in range(len(LIST_FIELDS))]
            for row in table:
                click.echo(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


@apikey.command()
@click.argument("key")
def show(key: str) -> None:
    """Show every field of KEY."""
    with _session() as session:
        row = api_keys.get_api_key(session, key)
        if row is None:
            raise click.ClickException(f"API key {key!r} does not exist")
        for name in FIELDS:
            click.echo(f"{name:28}: {getattr(row, name)}")


@apikey.command()
@click.argument("key")
@_key_fields({})
def update(key: str, **fields: Any) -> None:
    """Change the given fields of KEY."""
    changes = {name: value for name, value in fields.items() if value is not None}
    if not changes:
        raise click.UsageError("nothing to update: give at least one field flag")
    with _session() as session:
        if not api_keys.update_api_key(session, key, **changes):
            raise click.ClickException(f"API key {key!r} does not exist")
    click.echo(f"Updated API key: {key!r} ({', '.join(sorted(changes))})")


@apikey.command()
@click.argument("key")
def delete(key: str) -> None:
    """Delete KEY."""
    with _session() as session:
        if not api_keys.delete_api_key(session, key):
            raise click.ClickException(f"API key {key!r} does not exist")
    click.echo(f"Deleted API key: {key!r}")
