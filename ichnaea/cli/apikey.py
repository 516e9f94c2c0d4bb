"""``ichnaea apikey``: create, list, show, update and delete API keys.

After a change is committed, the key version in Redis is incremented
(``ichnaea.api.keys.announce_key_change``): every web process drops its
cached keys within about a second. If Redis cannot be reached, the change
still stands and web processes see it when their cache entries expire.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy.orm import Session

from ichnaea.api.keys import API_KEY_CACHE_JITTER_S, API_KEY_CACHE_TTL_S, announce_key_change
from ichnaea.broker.client import REDIS_ERRORS, connect
from ichnaea.cli.common import start_role
from ichnaea.config import Settings
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
            options: dict[str, Any] = {**kwargs, "show_default": column in defaults}
            func = click.option(flag, column, default=defaults.get(column), **options)(func)
        return func

    return decorate


# A new key may make 100 requests a day per API path, as with the original's
# admin script (the table itself has no default: NULL means unlimited).
CREATE_DEFAULTS = {
    "maxreq": 100,
    "allow_locate": True,
    "allow_region": True,
    "allow_fallback": False,
    "store_sample_locate": 100,
    "store_sample_submit": 100,
}


@contextmanager
def _session(*, changes: bool = False) -> Iterator[Session]:
    """A transaction; with ``changes``, web processes are told once it committed."""
    settings = start_role("apikey")
    engine = create_engine(settings.db_readwrite_url)
    try:
        with make_sessionmaker(engine)() as session, session.begin():
            yield session
    finally:
        engine.dispose()
    if changes:
        _announce(settings)


def _announce(settings: Settings) -> None:
    if settings.redis_embedded and not settings.embedded_redis_socket.exists():
        return  # no embedded Redis running, so no web process to tell
    client = connect(settings)
    try:
        announce_key_change(client)
    except REDIS_ERRORS as exc:
        longest_min = (API_KEY_CACHE_TTL_S + API_KEY_CACHE_JITTER_S) / 60
        click.echo(
            f"warning: Redis unreachable ({exc}); running web processes see the change "
            f"within {longest_min:.1f} minutes, when their cached keys expire",
            err=True,
        )
    finally:
        client.close()


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
    """Create KEY (a random UUID when omitted); keys are case-sensitive.

    A new key may make 100 requests a day per API path (/v1/geolocate,
    /v2/geosubmit, ...) unless --maxreq says otherwise; --maxreq 0 is
    unlimited. Running web processes accept it within about a second.
    """
    key = _check_key(key) if key else str(uuid.uuid4())
    with _session(changes=True) as session:
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
    with _session(changes=True) as session:
        if not api_keys.update_api_key(session, key, **changes):
            raise click.ClickException(f"API key {key!r} does not exist")
    click.echo(f"Updated API key: {key!r} ({', '.join(sorted(changes))})")


@apikey.command()
@click.argument("key")
def delete(key: str) -> None:
    """Delete KEY."""
    with _session(changes=True) as session:
        if not api_keys.delete_api_key(session, key):
            raise click.ClickException(f"API key {key!r} does not exist")
    click.echo(f"Deleted API key: {key!r}")
