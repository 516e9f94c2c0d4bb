"""The one place that turns errors into HTTP responses.

API errors (``ichnaea.errors``) become their Google-style JSON body; routing
errors (unknown path, wrong method) get the same envelope; anything else is
logged with its traceback (and sent to Sentry when configured) and answered
with a generic JSON 500 that reveals nothing (:func:`unexpected_error`,
answered by ``InternalErrorMiddleware`` so that the connection stays usable).
"""

from __future__ import annotations

import logging

import sentry_sdk
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ichnaea.api.responses import AsciiJSONResponse
from ichnaea.errors import ApiError, InternalError, MethodNotAllowedError, RouteNotFoundError

log = logging.getLogger(__name__)


def error_response(exc: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    return AsciiJSONResponse(exc.body(), status_code=exc.code, headers=headers)


async def handle_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)  # registered for ApiError only
    headers = {"Retry-After": "30"} if exc.code == 503 else None
    return error_response(exc, headers)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # registered for HTTPException only
    if exc.status_code == 405:
        return error_response(MethodNotAllowedError(), dict(exc.headers or {}))
    if exc.status_code == 404:
        return error_response(RouteNotFoundError())
    err = ApiError()
    body = err.body()
    body["error"]["code"] = exc.status_code
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


# Scanners send very long paths; the log line keeps the start.
MAX_LOGGED_PATH_CHARS = 256


def unexpected_error(scope: Scope, exc: Exception) -> JSONResponse:
    """Log ``exc`` with its traceback, report it to Sentry, and return the generic 500."""
    path = str(scope.get("path", ""))[:MAX_LOGGED_PATH_CHARS]
    log.error("unhandled error on %s %s", scope.get("method"), path, exc_info=exc)
    # The logging integration would report the record too; Sentry's dedupe
    # integration drops the second event of the same exception object.
    sentry_sdk.capture_exception(exc)
    return error_response(InternalError())


async def answer_unexpected(
    scope: Scope, receive: Receive, send: Send, exc: Exception, *, started: bool
) -> None:
    """The last line of defence: log and report ``exc``; answer the generic 500 unless
    the response already started (then the server ends the connection)."""
    response = unexpected_error(scope, exc)
    if not started:
        await response(scope, receive, send)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """Starlette's last resort, for an error raised outside ``InternalErrorMiddleware``."""
    return unexpected_error(request.scope, exc)


EXCEPTION_HANDLERS = {
    ApiError: handle_api_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
