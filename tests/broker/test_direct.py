"""The group pusher's own script connection (``ichnaea.broker.direct``), on real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis
import redis.asyncio
import uvloop

from ichnaea.broker.client import connect_async_url, connect_url
from ichnaea.broker.direct import ScriptConnection, Target, direct_target
from ichnaea.broker.queue import GroupPusher

SCRIPT = "return {redis.call('RPUSH', KEYS[1], unpack(ARGV)), redis.call('LLEN', KEYS[1])}"


def _run(main: Callable[[], Awaitable[Any]]) -> Any:
    """On uvloop, as the web role runs (its transports are no asyncio.Transport)."""
    return uvloop.run(main())  # type: ignore[arg-type]


async def _target_of(url: str) -> Target | None:
    client = connect_async_url(url)
    try:
        return direct_target(client)
    finally:
        await client.aclose()


def test_the_target_is_the_clients_server_database_and_user() -> None:
    tcp = _run(lambda: _target_of("redis://ann:s%40cret@10.1.2.3:6380/4"))
    assert tcp == Target(host="10.1.2.3", port=6380, db=4, username="ann", password="s@cret")
    unix = _run(lambda: _target_of("unix:///run/redis.sock?db=2"))
    assert unix == Target(path="/run/redis.sock", db=2)
    # TLS is redis-py's to speak: the pusher keeps the client's way.
    assert _run(lambda: _target_of("rediss://10.1.2.3:6380/0")) is None


def test_a_cluster_keeps_the_clients_way(redis_cluster_url: str) -> None:
    assert _run(lambda: _target_of(redis_cluster_url)) is None


def _connection(url: str, **options: Any) -> ScriptConnection:
    target = _run(lambda: _target_of(url))
    assert target is not None
    return ScriptConnection(target, SCRIPT, **options)


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_runs_answer_the_scripts_replies_on_one_connection(
    redis_url: str, redis_client: redis.Redis, loop: str
) -> None:
    connection = _connection(redis_url)

    async def main() -> list[Any]:
        try:
            first = await connection.run(["q"], [b"a", b"b"])
            replies = connection._replies
            second = await connection.run(["q"], [b"\x00\xff"])
            assert connection._replies is replies  # the same connection
            return [first, second]
        finally:
            await connection.close()

    answers = _run(main) if loop == "uvloop" else asyncio.run(main())
    assert answers == [[2, 2], [3, 3]]
    assert redis_client.lrange("q", 0, -1) == [b"a", b"b", b"\x00\xff"]


def test_a_script_the_server_lost_is_sent_again(redis_url: str, redis_client: redis.Redis) -> None:
    connection = _connection(redis_url)

    async def main() -> list[Any]:
        try:
            first = await connection.run(["q"], [b"a"])
            redis_client.script_flush()  # a restart, or SCRIPT FLUSH by an operator
            return [first, await connection.run(["q"], [b"b"])]
        finally:
            await connection.close()

    assert _run(main) == [[1, 1], [2, 2]]


def test_an_error_reply_is_a_response_error_and_the_connection_goes_on(
    redis_url: str, redis_client: redis.Redis
) -> None:
    redis_client.set("text", "not a list")
    connection = _connection(redis_url)

    async def main() -> Any:
        try:
            with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
                await connection.run(["text"], [b"a"])
            return await connection.run(["q"], [b"a"])
        finally:
            await connection.close()

    assert _run(main) == [1, 1]


def test_a_connection_the_server_closed_is_replaced_before_the_next_run(
    redis_url: str, redis_client: redis.Redis
) -> None:
    connection = _connection(redis_url)

    async def main() -> Any:
        try:
            await connection.run(["q"], [b"a"])
            killed = redis_client.client_kill_filter(_type="normal", skipme=True)
            assert killed >= 1
            await asyncio.sleep(0.2)  # the close reaches the client
            return await connection.run(["q"], [b"b"])
        finally:
            await connection.close()

    assert _run(main) == [2, 2]


def test_the_database_of_the_url_is_selected(redis_url: str) -> None:
    other = redis_url.replace("/0", "/5") if "/0" in redis_url else None
    if other is None:  # a unix socket URL: the database is a parameter
        other = redis_url + ("&" if "?" in redis_url else "?") + "db=5"
    sync = connect_url(other)
    sync.delete("q")
    connection = _connection(other)

    async def main() -> Any:
        try:
            return await connection.run(["q"], [b"a"])
        finally:
            await connection.close()

    try:
        assert _run(main) == [1, 1]
        assert sync.lrange("q", 0, -1) == [b"a"]
    finally:
        sync.delete("q")
        sync.close()


def test_a_refused_password_is_a_connection_error(redis_url: str) -> None:
    target = _run(lambda: _target_of(redis_url))
    assert target is not None
    connection = ScriptConnection(
        Target(host=target.host, port=target.port, path=target.path, password="wrong"), SCRIPT
    )

    async def main() -> None:
        try:
            with pytest.raises(redis.ConnectionError, match="refused"):
                await connection.run(["q"], [b"a"])
        finally:
            await connection.close()

    _run(main)


def test_a_silent_server_is_a_timeout_and_a_closed_port_a_connection_error() -> None:
    async def main() -> None:
        writers: list[asyncio.StreamWriter] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            await reader.read(1 << 16)  # takes the command, never answers

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        connection = ScriptConnection(Target(host="127.0.0.1", port=port), SCRIPT, timeout_s=0.2)
        try:
            with pytest.raises(redis.TimeoutError):
                await connection.run(["q"], [b"a"])
            assert connection._replies is None or connection._replies.closed
        finally:
            await connection.close()
            server.close()
            for writer in writers:
                writer.close()
        await server.wait_closed()
        closed = ScriptConnection(Target(host="127.0.0.1", port=port), SCRIPT)
        with pytest.raises(redis.ConnectionError, match="cannot connect"):
            await closed.run(["q"], [b"a"])

    _run(main)


def test_the_group_pusher_runs_on_its_own_connection(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """Plain servers (TCP and unix socket) take the direct way; the shared tests of
    ``GroupPusher`` (tests/pipeline/ingest/test_backlog.py) run on it as well."""

    async def main() -> list[bool]:
        client = connect_async_url(redis_url)

        async def nothing_elsewhere() -> int:
            return 0

        pusher = GroupPusher(client, "q", nothing_elsewhere)
        try:
            assert pusher._direct is not None
            return list(await asyncio.gather(*[pusher.push([b"x"], limit=3) for _ in range(4)]))
        finally:
            await pusher.close()
            await client.aclose()

    assert _run(main) == [True, True, True, False]
    assert redis_client.llen("q") == 3
