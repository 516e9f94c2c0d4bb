"""One Redis script on a connection of its own: the web role's queue pushes, cheaper.

The group pusher (:class:`ichnaea.broker.queue.GroupPusher`) runs one
script per round trip, one run at a time. Through redis-py's asyncio
client a script run cost 105 µs of CPU on our 2-core machine, through
:class:`ScriptConnection` 44 µs (one ``RPUSH`` of 500 bytes, in a loop
under uvloop; redis-py adds its pool, retries, a timeout task per write,
its stream reader and event hooks). At about nine pushes per run under
load, that is 7 µs of a 120 µs geosubmit request (benchmarks/RESULTS.md,
session 17). :class:`ScriptConnection` is an ``asyncio.Protocol``:
hiredis (redis-py's own parser and packer) writes the command and reads
the replies; the code here only carries bytes and futures.

It speaks to one plain server over TCP or a unix socket, with the
client's database, user and password (:func:`direct_target`). Anything
else (Redis Cluster, TLS, a credential provider) returns None there, and
the caller keeps redis-py's way.

Failures are redis-py's exception types, so callers handle them as
before: an error reply is a ``ResponseError``, a lost connection a
``ConnectionError`` (the next run connects again), no reply within
``timeout_s`` a ``TimeoutError`` (the connection is dropped: a late reply
must not be taken for the next run's). A connection the server closed
while idle is noticed when it closes, so the next run connects afresh
instead of failing.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
from dataclasses import dataclass
from typing import Any, cast

import hiredis
import redis
import redis.asyncio

from ichnaea.broker.client import CONNECT_TIMEOUT_S, SOCKET_TIMEOUT_S, is_cluster


@dataclass(frozen=True, slots=True)
class Target:
    """Where and as whom to connect: a unix socket ``path``, else TCP ``(host, port)``."""

    host: str = "localhost"
    port: int = 6379
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None


def direct_target(client: redis.asyncio.Redis) -> Target | None:
    """The server ``client`` talks to, if it is one this module can reach the same way."""
    if is_cluster(client):
        return None
    pool = client.connection_pool
    options = pool.connection_kwargs
    if options.get("credential_provider") is not None:
        return None
    if pool.connection_class is redis.asyncio.Connection:
        host, port, path = (
            str(options.get("host", "localhost")),
            int(options.get("port", 6379)),
            None,
        )
    elif pool.connection_class is redis.asyncio.UnixDomainSocketConnection:
        host, port, path = "localhost", 6379, str(options["path"])
    else:
        return None  # TLS or a connection class of someone else's
    username, password = options.get("username"), options.get("password")
    return Target(
        host=host,
        port=port,
        path=path,
        db=int(options.get("db") or 0),
        username=None if username is None else str(username),
        password=None if password is None else str(password),
    )


class _Replies(asyncio.Protocol):
    """The connection's replies, handed to the waiting futures in order."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._reader = hiredis.Reader(
            protocolError=redis.InvalidResponse, replyError=redis.ResponseError
        )
        self._waiting: collections.deque[asyncio.Future[Any]] = collections.deque()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's or uvloop's (which is no subclass of asyncio.Transport).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while True:
            try:
                reply = self._reader.gets()
            except redis.InvalidResponse as exc:
                self.fail(exc)
                return
            if reply is False:
                return
            if not self._waiting:
                self.fail(redis.InvalidResponse("a reply nobody asked for"))
                return
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        reason = exc or "closed by the server"
        self.fail(redis.ConnectionError(f"connection to Redis lost: {reason}"))

    def fail(self, exc: Exception) -> None:
        """Close the connection; every command still waiting gets ``exc``."""
        self.closed = True
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def send(self, *commands: tuple[Any, ...]) -> list[asyncio.Future[Any]]:
        """Write ``commands`` at once; a future per reply."""
        if self.closed or self.transport is None or self.transport.is_closing():
            raise redis.ConnectionError("connection to Redis closed")
        loop = asyncio.get_running_loop()
        waiters = [loop.create_future() for _ in commands]
        self._waiting.extend(waiters)
        self.transport.write(b"".join(hiredis.pack_command(command) for command in commands))
        return waiters


class ScriptConnection:
    """Runs of one Lua script (``EVALSHA``, ``EVAL`` once the server has lost it), one at a time."""

    def __init__(
        self,
        target: Target,
        script: str,
        *,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        timeout_s: float = SOCKET_TIMEOUT_S,
    ) -> None:
        self.target = target
        self._script = script
        self._sha = hashlib.sha1(script.encode("utf-8")).hexdigest()
        self._connect_timeout_s = connect_timeout_s
        self._timeout_s = timeout_s
        self._replies: _Replies | None = None

    async def run(self, keys: list[str], args: list[Any]) -> Any:
        """The script's reply for ``keys`` and ``args``; redis-py's errors (see the module docs)."""
        replies = await self._connected()
        command = (len(keys), *keys, *args)
        reply = await self._reply(replies, ("EVALSHA", self._sha, *command))
        if isinstance(reply, redis.ResponseError) and str(reply).startswith("NOSCRIPT"):
            reply = await self._reply(replies, ("EVAL", self._script, *command))
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def close(self) -> None:
        replies, self._replies = self._replies, None
        if replies is not None:
            replies.fail(redis.ConnectionError("connection to Redis closed"))

    async def _connected(self) -> _Replies:
        if self._replies is not None and not self._replies.closed:
            return self._replies
        self._replies = None
        loop = asyncio.get_running_loop()
        target = self.target
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                if target.path is not None:
                    _, replies = await loop.create_unix_connection(_Replies, target.path)
                else:
                    _, replies = await loop.create_connection(_Replies, target.host, target.port)
        except (OSError, TimeoutError) as exc:
            raise redis.ConnectionError(f"cannot connect to Redis: {exc!r}") from exc
        setup: list[tuple[Any, ...]] = []
        if target.password is not None:
            user = (target.username,) if target.username is not None else ()
            setup.append(("AUTH", *user, target.password))
        if target.db:
            setup.append(("SELECT", target.db))
        if setup:
            try:
                for waiter in replies.send(*setup):
                    reply = await self._wait(replies, waiter)
                    if isinstance(reply, Exception):
                        raise redis.ConnectionError(f"Redis refused the connection: {reply}")
            except BaseException:
                replies.fail(redis.ConnectionError("connection to Redis not set up"))
                raise
        self._replies = replies
        return replies

    async def _reply(self, replies: _Replies, command: tuple[Any, ...]) -> Any:
        (waiter,) = replies.send(command)
        return await self._wait(replies, waiter)

    async def _wait(self, replies: _Replies, waiter: asyncio.Future[Any]) -> Any:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await waiter
        except TimeoutError:
            # A late reply would be taken for the next command's: drop the connection.
            error = redis.TimeoutError(f"no reply from Redis within {self._timeout_s} s")
            replies.fail(error)
            raise error from None
