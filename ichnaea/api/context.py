"""What the API endpoints share: per-process state, client IP and key lookup.

``ApiState`` is built once per process in the web lifespan and reaches the
handlers through the request state. ``find_api_key`` looks a key up through
the per-process cache and tells apart the outcomes each API treats
differently (locate refuses unknown keys, submit accepts them anonymously).
"""

from __future__ import annotations

import asyncio
import enum
import functools
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import anyio
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import ClientDisconnect, Request

from ichnaea.api.body import large_body_limiter, parse_body
from ichnaea.api.keys import (
    ApiKey,
    ApiKeyCache,
    api_key_from_row,
    is_valid_key_text,
)
from ichnaea.api.locate.service import LocateService
from ichnaea.api.logfields import note
from ichnaea.api.usage import UsageRecorder
from ichnaea.config import IPAddress, Settings, TrustedProxies
from ichnaea.errors import DailyLimitExceededError
from ichnaea.geoip import GeoIPReader
from ichnaea.metrics import Metrics
from ichnaea.repositories.api_keys import get_api_key
from ichnaea.repositories.session import make_sessionmaker

log = logging.getLogger(__name__)

STATE_KEY = "api"
MAX_LOGGED_KEY_CHARS = 64

T = TypeVar("T")


@dataclass(slots=True)
class ApiState:
    """What the API endpoints need, built once per process in the lifespan."""

    settings: Settings
    service: LocateService
    geoip: GeoIPReader
    api_keys: ApiKeyCache
    metrics: Metrics
    # Daily counts and users of the keys, sent to Redis in batches.
    usage: UsageRecorder
    # Bounds the large request bodies inflated at once (ichnaea.api.body).
    body_limiter: anyio.CapacityLimiter = field(default_factory=large_body_limiter)
    # Key lookups in flight, shared by the requests that wait for the same key.
    key_lookups: dict[str, asyncio.Future[tuple[KeyOutcome, ApiKey | None]]] = field(
        default_factory=dict
    )


def api_state(request: Request) -> ApiState:
    """The process's ``ApiState`` (the lifespan's state entry; read from the scope
    directly: ``request.state`` builds a wrapper per request)."""
    state: ApiState = request.scope["state"][STATE_KEY]
    return state


@functools.lru_cache(maxsize=4096)
def _parsed(text: str | None) -> tuple[IPAddress, str] | None:
    """:func:`_address` of a peer or ``X-Forwarded-For`` entry, and its text; cached.

    Peers, proxies and returning clients repeat, and parsing an address
    costs more than the rest of :func:`client_ip`.
    """
    address = _address(text)
    return None if address is None else (address, str(address))


def _address(text: str | None) -> IPAddress | None:
    """An address as a peer or proxy writes it: bare, ``v4:port`` or ``[v6]:port``."""
    if not text:
        return None
    host = text
    if text.startswith("["):
        host = text[1 : text.find("]")]
    elif text.count(":") == 1:
        host = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    # A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d.
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return mapped or address


def client_ip(request: Request) -> str | None:
    """The client's address: the peer, or who a trusted proxy says the client is.

    ``X-Forwarded-For`` is believed only when the peer is in
    ``FORWARDED_ALLOW_IPS``. Each proxy appends the address it received the
    request from, so the entries are walked from the right, skipping trusted
    proxies; the first other entry is the client (everything left of it was
    written by the client and may be forged). If every entry is a trusted
    proxy, the left-most is the client. None when the address is unknown
    (not an IP, or an unreadable entry where the client should be).
    """
    scope = request.scope
    peer = scope.get("client")
    # Several header lines mean the same as one comma-joined line (RFC 9110 5.3).
    forwarded = b",".join(value for name, value in scope["headers"] if name == b"x-forwarded-for")
    return _client_ip(
        peer[0] if peer else None,
        forwarded.decode("latin-1"),
        api_state(request).settings.forwarded_allow_ips,
    )


@functools.lru_cache(maxsize=4096)
def _client_ip(peer_text: str | None, forwarded: str, trusted: TrustedProxies) -> str | None:
    """:func:`client_ip` of a peer and its ``X-Forwarded-For``; cached, as clients and
    proxies repeat (one lookup instead of parsing and matching addresses)."""
    peer = _parsed(peer_text)
    entries = [entry.strip() for entry in forwarded.split(",") if entry.strip()]
    if not entries or (peer[0] if peer else None) not in trusted:
        return None if peer is None else peer[1]
    for entry in reversed(entries):
        parsed = _parsed(entry)
        if parsed is None or parsed[0] not in trusted:
            return None if parsed is None else parsed[1]
    first = _parsed(entries[0])
    return None if first is None else first[1]


@functools.lru_cache(maxsize=1024)
def _last_key(query_string: bytes) -> str | None:
    """The last ``key`` parameter of a query string, as Starlette's ``QueryParams`` reads it.

    Cached: a service sees few distinct query strings (one per API key).
    """
    keys = [
        v
        for k, v in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        if k == "key"
    ]
    return keys[-1] if keys else None


def api_key_text(request: Request) -> str | None:
    """The API key the request names (the last ``key`` query parameter), if any."""
    return _last_key(request.scope["query_string"])


class KeyOutcome(enum.Enum):
    malformed = "malformed"  # missing, or not 4-40 letters, digits and dashes
    unknown = "unknown"  # well-formed but not in the table
    found = "found"
    unavailable = "unavailable"  # the database could not be asked


def _lookup_key_sync(state: ApiState, key: str) -> ApiKey | None:
    sessionmaker = make_sessionmaker(state.service.db)
    with sessionmaker() as session:
        row = get_api_key(session, key)
        return None if row is None else api_key_from_row(row)


async def find_api_key(state: ApiState, text: str | None) -> tuple[KeyOutcome, ApiKey | None]:
    """Look a key up; a database failure is ``unavailable`` (and opens the breaker).

    Concurrent requests with the same uncached key share one database
    lookup: after a start or a key change, a busy process would otherwise
    send one per request until the first answer arrives.
    """
    if text is None or not is_valid_key_text(text):
        return KeyOutcome.malformed, None
    if state.api_keys.refresh_due():
        await state.api_keys.refresh(state.service.redis)
    cached, api_key = state.api_keys.get(text)
    if not cached:
        pending = state.key_lookups.get(text)
        if pending is None:
            pending = asyncio.ensure_future(_lookup_key(state, text))
            state.key_lookups[text] = pending
            pending.add_done_callback(lambda _: state.key_lookups.pop(text, None))
        # Shielded: a request that goes away does not cancel the others' lookup.
        return await asyncio.shield(pending)
    if api_key is None:
        return KeyOutcome.unknown, None
    return KeyOutcome.found, api_key


async def _lookup_key(state: ApiState, text: str) -> tuple[KeyOutcome, ApiKey | None]:
    breaker = state.service.db_breaker
    if not breaker.closed:
        return KeyOutcome.unavailable, None
    generation = state.api_keys.generation
    try:
        api_key = await state.service.run_blocking(_lookup_key_sync, state, text)
    except SQLAlchemyError as exc:
        breaker.failed()
        log.warning("api key not checked, database unavailable: %s", exc.__class__.__name__)
        return KeyOutcome.unavailable, None
    state.api_keys.put(text, api_key, generation=generation)
    if api_key is None:
        return KeyOutcome.unknown, None
    return KeyOutcome.found, api_key


async def enforce_daily_limit(
    state: ApiState,
    api_key: ApiKey,
    *,
    ip: str | None,
    path: str,
    api_type: str,
    today: date,
    request: Request | None = None,
) -> None:
    """Count the request for a known key; raise ``DailyLimitExceededError`` past the limit.

    The count and quota go into the request's log line (of ``request``).
    """
    count = await state.usage.count(api_key, ip=ip, path=path, api_type=api_type, today=today)
    if count is None:
        return
    fields: dict[str, Any] = {"api_key_count": count}
    exceeded = bool(api_key.maxreq) and count > (api_key.maxreq or 0)
    if api_key.maxreq:
        fields.update(
            rate_quota=api_key.maxreq,
            rate_remaining=max(api_key.maxreq - count, 0),
            rate_allowed=not exceeded,
        )
    note(request, **fields)
    if exceeded:
        raise DailyLimitExceededError()


def note_key(
    request: Request | None, outcome: KeyOutcome, text: str | None, api_key: ApiKey | None
) -> None:
    """The API key part of the request's log line."""
    if outcome is KeyOutcome.found and api_key is not None:
        note(request, api_key=api_key.valid_key)
    elif outcome is KeyOutcome.unavailable:
        note(request, api_key_db_fail=True)
    elif text:
        # Whatever the client sent: cut, so a junk parameter cannot bloat the log.
        note(request, invalid_api_key=text[:MAX_LOGGED_KEY_CHARS])


async def read_json(request: Request, state: ApiState, parse: Callable[[Any, bool], T]) -> T:
    """``parse(data, was_empty)`` of the decoded JSON body (see ``ichnaea.api.body``).

    For a large body the decoding and ``parse`` run in a worker thread, a
    few at a time per process, so ``parse`` must not touch the event loop.
    """
    encoding = content_type = None
    # The first of each header, as ``request.headers.get`` finds it, in one pass.
    for name, value in request.scope["headers"]:
        if name == b"content-encoding" and encoding is None:
            encoding = value.decode("latin-1")
        elif name == b"content-type" and content_type is None:
            content_type = value.decode("latin-1")
    return await parse_body(
        await _body(request),
        parse,
        content_encoding=encoding,
        content_type=content_type,
        max_decompressed_bytes=state.settings.max_decompressed_bytes,
        limiter=state.body_limiter,
    )


async def _body(request: Request) -> bytes:
    """The whole body, as ``request.body()`` reads it (a client gone first raises
    ``ClientDisconnect``), without its stream generator: a locate body is one message."""
    chunks = []
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
