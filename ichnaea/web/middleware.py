"""``InternalErrorMiddleware``: the generic JSON 500 inside Starlette's own layers.

The service's front door (metrics, request log, CORS, body limit, the last
line of defence) is one layer in ``ichnaea.web.front``, and the routes are
answered there directly. Requests it hands to Starlette (unknown paths,
other methods) pass this middleware, which answers an unexpected exception
with the generic JSON 500 itself (logged with its traceback, reported to
Sentry) and does not re-raise: Starlette's own error middleware re-raises
after answering, and uvicorn then closes the keep-alive connection, so
the client's next, valid request on it would fail.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ichnaea.web.errors import answer_unexpected


class InternalErrorMiddleware:
    """The generic JSON 500 for an unexpected exception, answered here, never re-raised.

    Registered as Starlette's only user middleware (the front door outside
    it sees the 500). ``ClientDisconnect`` passes through: it is the
    client's doing and the front door records it as 499. An
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
            await answer_unexpected(scope, receive, send, exc, started=started)
