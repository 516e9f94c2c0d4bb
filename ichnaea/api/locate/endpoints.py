"""HTTP handlers of ``/v1/geolocate`` and ``/v1/country``: parse → search → render.

Processing order (spec locate.md 1.3): the API key first (a bad key is
``keyInvalid`` even with a malformed body; an exhausted one is
``dailyLimitExceeded`` before the body is read), then the body, then the
search. Only geolocate counts requests and client IPs; country is never
rate limited.

:func:`locate_one` answers one parsed geolocate query; the single endpoint
and the batch endpoint (``ichnaea.api.locate.batch``) both answer through it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from ichnaea.api.context import (
    ApiState,
    KeyOutcome,
    api_key_text,
    api_state,
    client_ip,
    enforce_daily_limit,
    find_api_key,
    note_key,
    read_json,
)
from ichnaea.api.keys import ApiKey
from ichnaea.api.locate.constants import DataAccuracy
from ichnaea.api.locate.query import Query
from ichnaea.api.locate.result import DataSource
from ichnaea.api.locate.schemas import parse_locate_request
from ichnaea.api.logfields import note
from ichnaea.api.responses import AnswerResponse
from ichnaea.errors import InvalidApiKeyError, LocationNotFoundError

log = logging.getLogger(__name__)


API_PATHS = {"locate": "v1.geolocate", "region": "v1.country"}


async def resolve_api_key(
    state: ApiState,
    text: str | None,
    api_type: str,
    request: Request | None = None,
    *,
    path: str | None = None,
) -> ApiKey:
    """The key's permissions; raises ``InvalidApiKeyError`` for a bad or unknown key.

    ``path`` names the endpoint in metrics and the log line (by default the
    one of ``api_type``). A database error skips the check: the request
    continues with the default permissions (locate and region allowed, no
    fallback, no limit) and is not counted under any key.
    """
    path = path or API_PATHS[api_type]
    tags = {"path": path, "key": "none"}
    outcome, api_key = await find_api_key(state, text)
    note(request, api_path=path, api_type=api_type)
    note_key(request, outcome, text, api_key)
    if outcome is KeyOutcome.unavailable:
        return ApiKey()
    if outcome is KeyOutcome.found and api_key is not None and api_key.allowed(api_type):
        if state.metrics.enabled:
            state.metrics.incr(f"{api_type}.request", tags={**tags, "key": api_key.valid_key or ""})
        return api_key
    if outcome is KeyOutcome.found:
        note(request, api_key_allowed=False)
    if outcome is not KeyOutcome.malformed:
        tags["key"] = "invalid"
    state.metrics.incr(f"{api_type}.request", tags=tags)
    raise InvalidApiKeyError()


def _count(n: int) -> str:
    return "none" if n == 0 else "one" if n == 1 else "many"


def _query_metrics(state: ApiState, api_key: ApiKey, query: Query) -> None:
    if (
        not state.metrics.enabled
        or api_key.valid_key is None
        or query.expected_accuracy is DataAccuracy.none
    ):
        return
    tags = {
        "key": api_key.valid_key,
        "blue": _count(query.considered.get("blue", 0)),
        "cell": _count(len(query.cell)),
        "wifi": _count(query.considered.get("wifi", 0)),
    }
    if query.ip is None:
        tags["geoip"] = "false"
    state.metrics.incr(f"{query.api_type}.query", tags=tags)


def _result_metrics(
    state: ApiState,
    api_key: ApiKey,
    query: Query,
    accuracy: float | None,
    source: DataSource | None,
) -> None:
    if not state.metrics.enabled or api_key.valid_key is None:
        return
    expected = query.expected_accuracy
    if expected is DataAccuracy.none:
        return
    hit = accuracy is not None and DataAccuracy.from_number(accuracy).value <= expected.value
    tags = {
        "key": api_key.valid_key,
        "fallback_allowed": str(api_key.can_fallback()).lower(),
        "accuracy": expected.name,
        "status": "hit" if hit else "miss",
    }
    if hit and source is not None:
        tags["source"] = source.name
    state.metrics.incr(f"{query.api_type}.result", tags=tags)


async def _prepare(request: Request, api_type: str) -> tuple[ApiState, ApiKey, Query, datetime]:
    state = api_state(request)
    api_key = await resolve_api_key(state, api_key_text(request), api_type, request)
    ip = client_ip(request)
    now = datetime.now(UTC).replace(tzinfo=None)
    if api_type == "locate":
        await enforce_daily_limit(
            state,
            api_key,
            ip=ip,
            path="v1.geolocate",
            api_type=api_type,
            today=now.date(),
            request=request,
        )
    geoip = state.geoip.lookup(ip) if ip is not None else None
    # Parsed where the body is decoded: off the event loop for large bodies.
    query = await read_json(
        request,
        state,
        lambda data, _: Query.build(
            parse_locate_request(data), api_type=api_type, ip=ip, geoip=geoip
        ),
    )
    return state, api_key, query, now


async def locate_one(
    state: ApiState, api_key: ApiKey, query: Query, *, now: datetime
) -> dict[str, object]:
    """The ``/v1/geolocate`` body for one parsed query; ``LocationNotFoundError`` if none.

    Searches, counts the query and result metrics and (through the service)
    stores the sampled query report, exactly once per query.
    """
    _query_metrics(state, api_key, query)
    result = await state.service.locate(query, api_key, now=now)
    _result_metrics(
        state, api_key, query, *((result.accuracy, result.source) if result else (None, None))
    )
    if result is None:
        raise LocationNotFoundError()
    body: dict[str, object] = {
        "location": {"lat": result.lat, "lng": result.lon},
        "accuracy": float(result.accuracy),
    }
    if result.fallback:
        body["fallback"] = result.fallback
    return body


async def geolocate(request: Request) -> Response:
    state, api_key, query, now = await _prepare(request, "locate")
    return AnswerResponse(await locate_one(state, api_key, query, now=now))


async def country(request: Request) -> Response:
    state, api_key, query, now = await _prepare(request, "region")
    _query_metrics(state, api_key, query)
    result = await state.service.region(query, now=now)
    _result_metrics(
        state, api_key, query, *((result.accuracy, result.source) if result else (None, None))
    )
    if result is None:
        raise LocationNotFoundError()
    body = {"country_code": result.region_code, "country_name": result.region_name}
    if result.fallback:
        body["fallback"] = result.fallback
    return AnswerResponse(body)
