"""The web app: Starlette with the front door in one layer and a direct path to the routes.

Every HTTP request passes one wrapper (:class:`ServiceApp`'s ``__call__``)
that does, in this order, what four middleware layers did one inside the
other:

* **metrics and the request log** — the ``request`` counter and
  ``request.timing`` per path, method and status, and, unless
  ``REQUEST_LOG=false``, one JSON line per request (the original's
  "canonical log line") on the ``ichnaea.request`` logger: ``event``
  (``POST /v2/geosubmit - 200``), ``http_method``, ``http_path``,
  ``http_status``, ``duration_s``, ``log_level`` and what the API
  handlers noted with :func:`ichnaea.api.logfields.note`. Load-balancer
  checks (``/__lbheartbeat__``) are not logged. A client that went away
  before its body was read (``ClientDisconnect``) is status 499 ("client
  closed request", as nginx names it): not our error, so no traceback and
  no Sentry event. Paths that are not routes share ``path:unknown``, so
  scanners cannot blow up the number of metric series;
* **CORS** on the API paths: ``Access-Control-Allow-Origin: *`` and
  ``Access-Control-Max-Age: 2592000`` on every response but a 405, and an
  empty 200 for ``OPTIONS``. Health endpoints get no CORS headers, as in
  the original service;
* **the body limit**: a body larger than ``MAX_BODY_BYTES`` is a 413, early
  when ``Content-Length`` says so; a body without one (chunked) as soon as
  the streamed bytes pass it (the handler's read raises
  ``PayloadTooLargeError``). A declared length bounds the body: the server
  reads no more bytes as this request's;
* **the last line of defence**: any other exception is logged with its
  traceback, reported to Sentry and answered with the generic JSON 500
  (:func:`ichnaea.web.errors.unexpected_error`), never re-raised, so the
  keep-alive connection stays usable; an error after the response started
  can only be logged.

Then a request for one of the routes, with one of its methods, goes
straight to its endpoint, with the app's exception handlers for API and
HTTP errors, as Starlette's router would call it. Everything else (unknown
paths, other methods, lifespan) goes through Starlette: its router answers
404 and 405. Starlette's own layers (server-error middleware, exception
middleware, router, route) cost more per request than the whole of
``/__lbheartbeat__``; the service answers tens of thousands of requests
a second per machine, so its routes skip them (``benchmarks/bench_asgi.py``
measures it).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from ichnaea.api.logfields import LOG_FIELDS_KEY
from ichnaea.errors import PayloadTooLargeError
from ichnaea.logging import RecordWriter
from ichnaea.metrics import Metrics
from ichnaea.web.errors import MAX_LOGGED_PATH_CHARS, answer_unexpected, error_response

request_log = logging.getLogger("ichnaea.request")
_request_lines = RecordWriter(request_log, logging.INFO)

UNLOGGED_PATHS = frozenset(("/__lbheartbeat__",))
# nginx's "client closed request": the client left before it was answered.
CLIENT_CLOSED_REQUEST = 499

CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-max-age", b"2592000"),
]

Endpoint = Callable[[Request], Awaitable[Response]]


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


def _declared_length(headers: Sequence[tuple[bytes, bytes]]) -> int | None:
    """The body length ``Content-Length`` declares; None when absent or unreadable, or
    when a ``Transfer-Encoding`` overrides it (RFC 9112 6.3)."""
    declared = None
    for name, value in headers:
        if name == b"transfer-encoding":
            return None
        if name == b"content-length" and declared is None:
            try:
                declared = int(value)
            except ValueError:
                return None
    return declared


class ServiceApp(Starlette):
    """Starlette with the front door and the direct route path (see the module docstring)."""

    def __init__(
        self,
        *,
        routes: Sequence[Route],
        cors_paths: Collection[str],
        max_body_bytes: int,
        get_metrics: Callable[[Scope], Metrics | None],
        log_requests: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(routes=list(routes), **kwargs)
        # Paths match exactly, as in the original: no redirect for a trailing slash.
        self.router.redirect_slashes = False
        self._endpoints: dict[str, tuple[frozenset[str], Endpoint]] = {
            route.path: (frozenset(route.methods or ()), route.endpoint) for route in routes
        }
        self._cors_paths = frozenset(cors_paths)
        self._max_body_bytes = max_body_bytes
        self._get_metrics = get_metrics
        self._log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        started = False
        fields: dict[str, Any] = {}
        # Per request: servers hand each request its own copy of the state.
        scope.setdefault("state", {})[LOG_FIELDS_KEY] = fields
        path, method = _route_path(scope), scope["method"]
        cors = path in self._cors_paths
        limit = self._max_body_bytes
        declared = _declared_length(scope["headers"])
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLargeError()
            return message

        async def front_send(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                if cors and status != 405:
                    message = {**message, "headers": [*message.get("headers", []), *CORS_HEADERS]}
            await send(message)

        # A declared length bounds the body: the server reads no more as this
        # request's (the next bytes are the next request).
        bounded = limited_receive if declared is None else receive
        try:
            try:
                if cors and method == "OPTIONS":
                    await front_send({"type": "http.response.start", "status": 200, "headers": []})
                    await front_send({"type": "http.response.body", "body": b""})
                elif declared is not None and declared > limit:
                    await error_response(PayloadTooLargeError())(scope, receive, front_send)
                else:
                    route = self._endpoints.get(path)
                    if route is not None and method in route[0]:
                        scope["app"], scope["router"] = self, self.router  # as Starlette sets them
                        response = await self._answer(route[1], scope, bounded)
                        if type(response).__call__ is not Response.__call__:
                            await response(scope, bounded, front_send)  # streamed, or its own way
                        else:
                            status, started = response.status_code, True
                            await _send_whole(response, send, cors=cors)
                    else:
                        await super().__call__(scope, bounded, front_send)
            except ClientDisconnect:
                raise
            except Exception as exc:  # the last line of defence: logged, reported, answered
                await answer_unexpected(scope, receive, front_send, exc, started=started)
        except ClientDisconnect:
            # Nothing to answer (nobody listens) and nothing to report.
            status = CLIENT_CLOSED_REQUEST
        finally:
            self._record(scope, path, status, time.perf_counter() - start, fields)

    async def _answer(self, endpoint: Endpoint, scope: Scope, receive: Receive) -> Response:
        """Call ``endpoint`` as Starlette's route would, with the API and HTTP error handlers;
        the response, for the caller to send."""
        request = Request(scope, receive)
        try:
            return await endpoint(request)
        except Exception as exc:
            handler = _handler_for(self.exception_handlers, exc)
            if handler is None:
                raise
            return await handler(request, exc)

    def _record(
        self, scope: Scope, route: str, status: int, elapsed: float, fields: dict[str, Any]
    ) -> None:
        metrics = self._get_metrics(scope)
        if metrics is not None and metrics.enabled:
            known = route in self._endpoints
            tags = {
                "path": route.strip("/").replace("/", ".") if known else "unknown",
                "method": scope["method"].lower(),
                "status": str(status),
            }
            metrics.incr("request", tags=tags)
            metrics.timing("request.timing", elapsed * 1000, tags=tags)
        if (
            self._log_requests
            and route not in UNLOGGED_PATHS
            and request_log.isEnabledFor(logging.INFO)
        ):
            method = scope["method"]
            path = scope["path"][:MAX_LOGGED_PATH_CHARS]
            line = {
                "event": f"{method} {path} - {status}",
                "http_method": method,
                "http_path": path,
                "http_status": status,
                "duration_s": round(elapsed, 4),
                "log_level": "info",
                **fields,
            }
            # Logger.info without its caller lookup, per-record set-up and, when
            # only our own handler listens, without the handler chain.
            _request_lines.write(_log_line(line))


async def _send_whole(response: Response, send: Send, *, cors: bool) -> None:
    """Send a whole-body response as ``Response.__call__`` does, the CORS headers
    joined at once (without the front's ``send`` wrapper in between)."""
    headers = response.raw_headers
    if cors and response.status_code != 405:
        headers = headers + CORS_HEADERS
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
    if response.background is not None:
        await response.background()


def _route_path(scope: Scope) -> str:
    """The path the routes match: without the root path the app is mounted at, as Starlette
    strips it (``starlette._utils.get_route_path``, private)."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :]
    return path


def _handler_for(
    handlers: Mapping[Any, Callable[[Request, Exception], Awaitable[Response]]], exc: Exception
) -> Callable[[Request, Exception], Awaitable[Response]] | None:
    """The handler registered for ``exc``'s nearest class, except the catch-all ``Exception``
    (the last line of defence answers those)."""
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None
