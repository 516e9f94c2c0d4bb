"""The front door (``ServiceApp``) and ``InternalErrorMiddleware``, over two-line inline apps."""

import logging
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ichnaea.web.errors import EXCEPTION_HANDLERS
from ichnaea.web.front import ServiceApp, _declared_length
from ichnaea.web.middleware import InternalErrorMiddleware


async def echo_length(request: Request) -> Response:
    return JSONResponse({"length": len(await request.body())})


async def boom(request: Request) -> Response:
    raise RuntimeError("database exploded with secret details")


def make_app(*, limit: int = 100, extra: tuple[Route, ...] = ()) -> Starlette:
    return ServiceApp(
        routes=[
            Route("/api", echo_length, methods=["GET", "POST"]),
            Route("/other", echo_length, methods=["GET", "POST"]),
            Route("/boom", boom),
            *extra,
        ],
        cors_paths=["/api"],
        max_body_bytes=limit,
        get_metrics=lambda scope: None,
        log_requests=False,
        middleware=[Middleware(InternalErrorMiddleware)],
        exception_handlers=EXCEPTION_HANDLERS,
    )


def test_body_within_limit_passes() -> None:
    response = TestClient(make_app()).post("/api", content=b"x" * 100)
    assert response.json() == {"length": 100}


def test_body_over_declared_limit_is_413_with_json_error() -> None:
    response = TestClient(make_app()).post("/api", content=b"x" * 101)
    assert response.status_code == 413
    assert response.json()["error"]["errors"][0]["reason"] == "payloadTooLarge"


def test_streamed_body_over_limit_is_413() -> None:
    def chunks():  # no Content-Length: chunked transfer
        for _ in range(5):
            yield b"x" * 30

    response = TestClient(make_app()).post("/other", content=chunks())
    assert response.status_code == 413
    assert response.json()["error"]["code"] == 413


def test_cors_headers_only_on_api_paths() -> None:
    client = TestClient(make_app())
    api = client.get("/api")
    assert api.headers["access-control-allow-origin"] == "*"
    assert api.headers["access-control-max-age"] == "2592000"
    assert "access-control-allow-origin" not in client.get("/other").headers


def test_cors_preflight_is_empty_200() -> None:
    response = TestClient(make_app()).options("/api", headers={"Origin": "https://x.example"})
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == "*"


def test_405_on_api_path_has_no_cors_headers() -> None:
    response = TestClient(make_app()).delete("/api")
    assert response.status_code == 405
    assert "access-control-allow-origin" not in response.headers


def test_unexpected_error_is_a_generic_json_500() -> None:
    response = TestClient(make_app(), raise_server_exceptions=False).get("/boom")
    assert response.status_code == 500
    assert "secret" not in response.text
    assert response.json()["error"]["code"] == 500


async def stream_then_fail(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first part"
        raise RuntimeError("failed mid-response")

    return StreamingResponse(chunks())


def test_internal_error_middleware_answers_500_itself_without_reraising() -> None:
    app = Starlette(routes=[Route("/boom", boom)], middleware=[Middleware(InternalErrorMiddleware)])
    response = TestClient(app).get("/boom")  # TestClient would re-raise a re-raised error
    assert response.status_code == 500
    assert response.json()["error"]["code"] == 500


def test_internal_error_after_the_response_started_is_logged_not_reraised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Starlette(
        routes=[Route("/stream", stream_then_fail)],
        middleware=[Middleware(InternalErrorMiddleware)],
    )
    response = TestClient(app).get("/stream")
    assert (response.status_code, response.content) == (200, b"first part")
    (error,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.exc_info is not None and isinstance(error.exc_info[1], RuntimeError)


def test_front_logs_an_error_after_the_response_started_once_and_does_not_reraise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app(extra=(Route("/stream", stream_then_fail),))
    response = TestClient(app).get("/stream")
    assert (response.status_code, response.content) == (200, b"first part")
    (error,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.exc_info is not None and isinstance(error.exc_info[1], RuntimeError)


@pytest.mark.parametrize("root_path", ["", "/prefix"])
def test_routes_answer_the_same_directly_and_through_starlette(root_path: str) -> None:
    """Mounted under a root path, the routes, CORS and the routing errors are the same."""
    client = TestClient(make_app(), root_path=root_path)
    answer = client.post(f"{root_path}/api", content=b"abc")
    assert (answer.status_code, answer.json()) == (200, {"length": 3})
    assert answer.headers["access-control-allow-origin"] == "*"
    refused = client.delete(f"{root_path}/api")
    assert refused.status_code == 405 and refused.json()["error"]["code"] == 405
    assert client.get(f"{root_path}/missing").json()["error"]["code"] == 404


@pytest.mark.parametrize(
    ("headers", "declared"),
    [
        ([(b"content-length", b"12")], 12),
        ([(b"host", b"x"), (b"content-length", b"12"), (b"content-length", b"99")], 12),
        ([(b"content-length", b"twelve")], None),
        ([], None),
        # Transfer-Encoding overrides Content-Length (RFC 9112 6.3): the body is
        # counted as it streams, whatever the length says.
        ([(b"content-length", b"12"), (b"transfer-encoding", b"chunked")], None),
        ([(b"transfer-encoding", b"chunked"), (b"content-length", b"12")], None),
    ],
)
def test_only_a_length_without_transfer_encoding_bounds_the_body(
    headers: list[tuple[bytes, bytes]], declared: int | None
) -> None:
    assert _declared_length(headers) == declared
