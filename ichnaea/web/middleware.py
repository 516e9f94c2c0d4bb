"""Pure-ASGI middleware: request body size limit and CORS for the API routes.

* ``BodySizeLimitMiddleware`` refuses a body larger than the limit with 413,
  early when ``Content-Length`` says so, otherwise as soon as the streamed
  bytes pass it (the handler's read raises ``PayloadTooLargeError``).
* ``ApiCorsMiddleware`` gives every response of the API paths
  ``Access-Control-Allow-Origin: *`` and ``Access-Control-Max-Age: 2592000``
  and answers ``OPTIONS`` there with an empty 200. Health endpoints and 405
  answers get no CORS headers, as in the original service.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ichnaea.errors import PayloadTooLargeError
from ichnaea.web.errors import error_response

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
