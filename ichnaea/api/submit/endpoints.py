"""HTTP handlers of ``/v2/geosubmit``, ``/v1/geosubmit`` and ``/v1/submit``.

Processing order (spec pipeline.md 1.2): the optional API key (a known key
is counted and limited per day; an unknown or missing one stores the data
anonymously), the body, the lenient report parsing, the key's sampling
rate, then one queue item per report on ``update_incoming``. A Redis
failure while queueing is a 503 with ``Retry-After``: the client keeps the
data and sends it again, nothing is silently lost. So is a submission whose
reports would push the backlog past ``MAX_QUEUE_BACKLOG``
(``ichnaea.pipeline.ingest.backlog``): its reports are queued all or none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sentry_sdk
from starlette.requests import Request
from starlette.responses import Response

from ichnaea.api.context import (
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
from ichnaea.api.logfields import note
from ichnaea.api.responses import AnswerResponse
from ichnaea.broker.client import REDIS_ERRORS
from ichnaea.broker.queue import encode_item
from ichnaea.errors import ParseError, ServiceUnavailableError
from ichnaea.reports.formats import Report, parse_v0, parse_v1, parse_v2

log = logging.getLogger(__name__)


async def _submit(request: Request, path: str, parse: Callable[[Any], list[Report]]) -> None:
    state = api_state(request)
    text = api_key_text(request)
    outcome, found = await find_api_key(state, text)
    api_key = found if found is not None else ApiKey()
    note(request, api_path=path, api_type="submit")
    note_key(request, outcome, text, found)
    if outcome is not KeyOutcome.unavailable:
        tag = {"found": api_key.valid_key or "", "unknown": "invalid", "malformed": "none"}
        state.metrics.incr("submit.request", tags={"path": path, "key": tag[outcome.value]})
    if outcome is KeyOutcome.found:
        await enforce_daily_limit(
            state,
            api_key,
            ip=client_ip(request),
            path=path,
            api_type="submit",
            today=datetime.now(UTC).date(),
            request=request,
        )
    sampled = api_key.store_sample("submit")

    def prepare(data: Any, empty: bool) -> list[bytes] | None:
        """The encoded queue items, None when not sampled; off the loop for large bodies."""
        if empty:
            raise ParseError()
        reports = parse(data)
        if not sampled:
            return None
        return [
            encode_item(
                {
                    "api_key": api_key.valid_key,
                    "source": (report.get("position") or {}).get("source", "gnss"),
                    "report": report,
                }
            )
            for report in reports
        ]

    items = await read_json(request, state, prepare)
    if items is None:
        return
    if items:
        limit = state.settings.max_queue_backlog
        try:
            queued = await state.service.queue_reports(items, limit=limit)
        except REDIS_ERRORS as exc:
            log.error("submission refused, redis unavailable: %s", exc.__class__.__name__)
            sentry_sdk.capture_exception(exc)
            raise ServiceUnavailableError() from exc
        if not queued:
            # Refuse rather than evict: the client keeps the data and retries.
            log.warning("submission of %d reports refused, backlog at %d", len(items), limit)
            raise ServiceUnavailableError()
    tags = {"key": api_key.valid_key} if api_key.valid_key else None
    state.metrics.incr("data.batch.upload", tags=tags)


async def geosubmit_v2(request: Request) -> Response:
    await _submit(request, "v2.geosubmit", parse_v2)
    return AnswerResponse({})


async def geosubmit_v1(request: Request) -> Response:
    await _submit(request, "v1.geosubmit", parse_v1)
    return AnswerResponse({})


async def submit_v0(request: Request) -> Response:
    await _submit(request, "v1.submit", parse_v0)
    return Response(status_code=204)
