"""The one place that turns errors into HTTP responses.

API errors (``ichnaea.errors``) become their Google-style JSON body; routing
errors (unknown path, wrong method) get the same envelope; anything else is
logged with its traceback (and sent to Sentry when configured) and answered
with a generic JSON 500 that reveals nothing.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ichnaea.errors import ApiError, InternalError, MethodNotAllowedError, RouteNotFoundError

log = logging.getLogger(__name__)


def error_response(exc: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.code, headers=headers)


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


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(InternalError())


EXCEPTION_HANDLERS = {
    ApiError: handle_api_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
