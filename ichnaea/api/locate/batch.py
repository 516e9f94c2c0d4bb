"""``POST /v1/geolocate/batch``: many geolocate queries in one request.

The body is ``{"queries": [geolocate body, ...]}``; the answer is
``{"results": [...]}`` in the same order, each item the body
``/v1/geolocate`` would answer for that query: ``{"location", "accuracy",
"fallback"?}`` when found, else its whole error body (``{"error": {...}}``
plus ``"details"`` for a parse error). A client tells them apart by the
``error`` key. One query's error never fails the batch.

Processing order, like the single endpoint's: the API key first (a bad or
unknown key, or one without locate permission, is ``keyInvalid`` for the
whole request), then the envelope (not an object, no ``queries`` list:
``parseError``; more than ``MAX_BATCH_QUERIES`` queries: 413
``payloadTooLarge``, nothing counted), then the daily limit, then the
searches.

Decisions:

* Daily limit: every query counts once against the key's ``v1.geolocate``
  counter (the same one the single endpoint counts), in one Redis round
  trip for the whole batch, invalid queries included (a single call with a
  malformed body counts too). When the limit is reached mid-batch, the
  queries up to the limit are answered and each later one gets a
  ``dailyLimitExceeded`` error body, as N single calls in a row would; the
  request itself is a 200.
* IP fallback: the client address (and its GeoIP record) is the request's,
  the same for every query; each query's ``considerIp``/``fallbacks`` decide
  whether it is used, as on ``/v1/geolocate``.
* Query reports are sampled and stored per query by the locate service.
* Only POST: a batch needs a body (GET and HEAD answer 405).

Each query is answered by :func:`ichnaea.api.locate.endpoints.locate_one`,
a few at a time (``BATCH_CONCURRENCY``) so that database round trips
overlap without one batch taking every thread of the process.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ichnaea.api.context import ApiState, api_key_text, api_state, client_ip, read_json
from ichnaea.api.keys import ApiKey
from ichnaea.api.locate.endpoints import API_PATHS, locate_one, resolve_api_key
from ichnaea.api.locate.query import Query
from ichnaea.api.locate.schemas import parse_locate_request
from ichnaea.api.logfields import note
from ichnaea.api.responses import AsciiJSONResponse
from ichnaea.errors import ApiError, DailyLimitExceededError, ParseError, PayloadTooLargeError
from ichnaea.geoip import GeoIPRecord

BATCH_PATH = "v1.geolocate.batch"
# Queries of one batch searched at the same time. Enough to overlap the
# database round trips; few enough to leave the process's threads (and
# connections) to the other requests.
BATCH_CONCURRENCY = 8

# A parsed batch item: the query, or why it could not be parsed.
Item = Query | ApiError


def parse_batch(
    data: Any, *, max_queries: int, ip: str | None, geoip: GeoIPRecord | None
) -> list[Item]:
    """The queries of a decoded batch body; an envelope error raises.

    A query that fails to parse becomes its ``ParseError``, in its place.
    """
    if not isinstance(data, dict):
        message = f'"{data}" is not a mapping type: Does not implement dict-like functionality.'
        raise ParseError({"validation": {"": message}})
    queries = data.get("queries")
    if not isinstance(queries, list):
        raise ParseError(
            {"validation": {"queries": "Required" if queries is None else "Not a list"}}
        )
    if len(queries) > max_queries:
        # 413, not 400, as for submissions: the client splits the batch.
        message = f"{len(queries)} queries; send at most {max_queries} per request"
        raise PayloadTooLargeError({"queries": message})
    items: list[Item] = []
    for body in queries:
        try:
            items.append(
                Query.build(parse_locate_request(body), api_type="locate", ip=ip, geoip=geoip)
            )
        except ParseError as exc:
            items.append(exc)
    return items


async def _allowed(
    state: ApiState,
    api_key: ApiKey,
    *,
    queries: int,
    ip: str | None,
    now: datetime,
    request: Request,
) -> int:
    """Count ``queries`` against the key's daily limit; how many of the first ones it allows."""
    count = await state.usage.count(
        api_key,
        ip=ip,
        path=API_PATHS["locate"],
        api_type="locate",
        today=now.date(),
        amount=queries,
    )
    if count is None:
        return queries  # no key, or Redis down: nothing is refused
    note(request, api_key_count=count)
    if not api_key.maxreq:
        return queries
    # The batch's queries took the counts count - queries + 1 ... count.
    allowed = max(0, min(queries, api_key.maxreq - (count - queries)))
    note(
        request,
        rate_quota=api_key.maxreq,
        rate_remaining=max(api_key.maxreq - count, 0),
        rate_allowed=allowed == queries,
    )
    return allowed


async def _answer(state: ApiState, api_key: ApiKey, item: Item, *, now: datetime) -> dict[str, Any]:
    if isinstance(item, ApiError):
        return item.body()
    try:
        return await locate_one(state, api_key, item, now=now)
    except ApiError as exc:  # this query's answer (notFound, ...), not the batch's
        return exc.body()


async def geolocate_batch(request: Request) -> Response:
    state = api_state(request)
    api_key = await resolve_api_key(
        state, api_key_text(request), "locate", request, path=BATCH_PATH
    )
    ip = client_ip(request)
    now = datetime.now(UTC).replace(tzinfo=None)
    geoip = state.geoip.lookup(ip) if ip is not None else None
    max_queries = state.settings.max_batch_queries
    # Parsed where the body is decoded: off the event loop for large bodies.
    items = await read_json(
        request,
        state,
        lambda data, _: parse_batch(data, max_queries=max_queries, ip=ip, geoip=geoip),
    )
    note(request, batch_queries=len(items))
    allowed = await _allowed(state, api_key, queries=len(items), ip=ip, now=now, request=request)
    results: list[dict[str, Any]] = [DailyLimitExceededError().body()] * len(items)
    pending = iter(range(allowed))

    async def work() -> None:
        for index in pending:  # shared: each index is taken by one worker
            results[index] = await _answer(state, api_key, items[index], now=now)

    async with asyncio.TaskGroup() as group:
        for _ in range(min(BATCH_CONCURRENCY, allowed)):
            group.create_task(work())
    # An item's parse error may quote the client's input (ichnaea.api.responses).
    return AsciiJSONResponse({"results": results})
