"""Pure-ASGI middleware: request metrics and log, error answers, body size limit, CORS.

* ``RequestMetricsMiddleware`` counts and times every request and, unless
  ``REQUEST_LOG=false``, writes one JSON line per request (the original's
  "canonical log line") on the ``ichnaea.request`` logger: ``event`` (``POST
  /v2/geosubmit - 200``), ``http_method``, ``http_path``, ``http_status``,
  ``duration_s``, ``log_level`` and what the API handlers noted with
  :func:`ichnaea.api.logfields.note` (``api_key``, ``api_path``, ``api_type``, ``api_key_count``,
  ``rate_quota``, ``rate_remaining``, ``rate_allowed``, ``invalid_api_key``,
  ``api_key_allowed``, ``api_key_db_fail``). Load-balancer checks
  (``/__lbheartbeat__``) are not logged. A client that went away before
  its body was read (``ClientDisconnect``) is status 499 ("client closed
  request", as nginx names it) in the line and the metrics: not our
  error, so no traceback and no Sentry event.
* ``InternalErrorMiddleware`` answers any other unexpected exception with
  the generic JSON 500 itself (logged with its traceback, reported to
  Sentry) and does not re-raise: Starlette's own error middleware re-raises
  after answering, and uvicorn then closes the keep-alive connection, so
  the client's next, valid request on it would fail.

* ``BodySizeLimitMiddleware`` refuses a body larger than the limit with 413,
  early when ``Content-Length`` says so, otherwise as soon as the streamed
  bytes pass it (the handler's read raises ``PayloadTooLargeError``).
* ``ApiCorsMiddleware`` gives every response of the API paths
  ``Access-Control-Allow-Origin: *`` and ``Access-Control-Max-Age: 2592000``
  and answers ``OPTIONS`` there with an empty 200. Health endpoints and 405
  answers get no CORS headers, as in the original service.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection
from typing import Any

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ichnaea.api.logfields import LOG_FIELDS_KEY
from ichnaea.errors import PayloadTooLargeError
from ichnaea.logging import RecordMaker
from ichnaea.metrics import Metrics
from ichnaea.web.errors import MAX_LOGGED_PATH_CHARS, error_response, unexpected_error

request_log = logging.getLogger("ichnaea.request")
_request_record = RecordMaker(request_log, logging.INFO)

UNLOGGED_PATHS = frozenset(("/__lbheartbeat__",))
# nginx's "client closed request": the client left before it was answered.
CLIENT_CLOSED_REQUEST = 499


CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-max-age", b"2592000"),
]


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_large = int(value) > self.max_body_bytes
                except ValueError:
                    too_large = False
                if too_large:
                    await error_response(PayloadTooLargeError())(scope, receive, send)
                    return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise PayloadTooLargeError()
            return message

        await self.app(scope, limited_receive, send)


class ApiCorsMiddleware:
    def __init__(self, app: ASGIApp, *, paths: Collection[str]) -> None:
        self.app = app
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await send({"type": "http.response.start", "status": 200, "headers": CORS_HEADERS})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] != 405:
                message = {**message, "headers": [*message.get("headers", []), *CORS_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_cors)


class InternalErrorMiddleware:
    """The generic JSON 500 for an unexpected exception, answered here, never re-raised.

    Registered inside ``RequestMetricsMiddleware`` (which sees the 500) and
    outside the others. ``ClientDisconnect`` passes through: it is the
    client's doing and ``RequestMetricsMiddleware`` records it as 499. An
    error after the response started can only be logged; the server then
    closes the connection, as it must with a response cut short.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_and_track(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_and_track)
        except ClientDisconnect:
            raise
        except Exception as exc:  # the last line of defence: logged, reported, answered
            response = unexpected_error(scope, exc)
            if not started:
                await response(scope, receive, send)


def _log_line(line: dict[str, Any]) -> str:
    """The request log line as compact JSON with sorted keys.

    orjson writes it several times faster than ``json.dumps``; a value it
    refuses (a string with a lone surrogate, from a percent-decoded query
    parameter) takes the standard library's way, which escapes it.
    """
    try:
        return orjson.dumps(line, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return json.dumps(line, sort_keys=True, separators=(",", ":"))


class RequestMetricsMiddleware:
    """``request`` counter and ``request.timing`` per path, method and status, and the log line.

    The path tag is the route with dots (``v1.geolocate``); requests to paths
    that are not routes share ``path:unknown`` so scanners cannot blow up the
    number of metric series. The client comes from ``get_metrics`` (the
    lifespan owns it).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        paths: Collection[str],
        get_metrics: Callable[[Scope], Metrics | None],
        log_requests: bool = True,
    ) -> None:
        self.app = app
        self.paths = frozenset(paths)
        self.get_metrics = get_metrics
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        fields: dict[str, Any] = {}
        # Per request: servers hand each request its own copy of the state.
        scope.setdefault("state", {})[LOG_FIELDS_KEY] = fields

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        except ClientDisconnect:
            # Nothing to answer (nobody listens) and nothing to report.
            status = CLIENT_CLOSED_REQUEST
        finally:
            elapsed = time.perf_counter() - start
            path = scope["path"]
            metrics = self.get_metrics(scope)
            if metrics is not None and metrics.enabled:
                tags = {
                    "path": path.strip("/").replace("/", ".") if path in self.paths else "unknown",
                    "method": scope["method"].lower(),
                    "status": str(status),
                }
                metrics.incr("request", tags=tags)
                metrics.timing("request.timing", elapsed * 1000, tags=tags)
            if (
                self.log_requests
                and path not in UNLOGGED_PATHS
                and request_log.isEnabledFor(logging.INFO)
            ):
                method = scope["method"]
                path = path[:MAX_LOGGED_PATH_CHARS]
                line = {
                    "event": f"{method} {path} - {status}",
                    "http_method": method,
                    "http_path": path,
                    "http_status": status,
                    "duration_s": round(elapsed, 4),
                    "log_level": "info",
                    **fields,
                }
                # Logger.info without its caller lookup and per-record set-up.
                request_log.handle(_request_record(_log_line(line)))
