"""The framework limit app: what Starlette and uvicorn alone can do with the load's bodies.

    python benchmarks/limit_app.py --port 8001 --processes 2

A bare Starlette app with one route per path the locate load drives
(``/v1/geolocate``, ``/v1/country``, ``/v2/geosubmit``, ``/__lbheartbeat__``).
Each API route reads the whole request body, parses it with ``orjson.loads``
and answers a constant JSON body of the same shape as ichnaea's answer, with
no key check, lookup, math, Redis or database. ``load_locate.py`` drives it
next to ``ichnaea web`` with the same bodies: ichnaea's throughput as a share
of this app's is the figure issue 9 sets goals for.

It runs under the same uvicorn settings as ``ichnaea web``
(``ichnaea/cli/roles.py``): loop and HTTP implementation left on ``auto``
(uvloop and httptools when installed), the same process count, no log
configuration, no access log, no server header, no proxy-header handling.
Keep the two in step when either changes. ``ichnaea web`` runs each of its
processes on its own ``SO_REUSEPORT`` socket (``ichnaea/web/serve.py``);
``--reuse-port`` runs this app the same way, instead of under uvicorn's own
supervisor with one shared socket.
"""

from __future__ import annotations

import argparse

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ichnaea.web.serve import serve

METHODS = ["GET", "HEAD", "POST"]

# Answers of the same size and shape as ichnaea's, encoded once.
LOCATION = orjson.dumps({"location": {"lat": 51.50081, "lng": -0.12452}, "accuracy": 57.9})
COUNTRY = orjson.dumps({"country_code": "GB", "country_name": "United Kingdom"})
EMPTY = orjson.dumps({})
HEARTBEAT = orjson.dumps({"status": "OK"})


async def _parsed(request: Request) -> None:
    body = await request.body()
    if body:
        orjson.loads(body)


async def geolocate(request: Request) -> Response:
    await _parsed(request)
    return Response(LOCATION, media_type="application/json")


async def country(request: Request) -> Response:
    await _parsed(request)
    return Response(COUNTRY, media_type="application/json")


async def geosubmit(request: Request) -> Response:
    await _parsed(request)
    return Response(EMPTY, media_type="application/json")


async def lbheartbeat(request: Request) -> Response:
    return Response(HEARTBEAT, media_type="application/json")


app = Starlette(
    routes=[
        Route("/v1/geolocate", geolocate, methods=METHODS),
        Route("/v1/country", country, methods=METHODS),
        Route("/v2/geosubmit", geosubmit, methods=METHODS),
        Route("/__lbheartbeat__", lbheartbeat, methods=METHODS),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument(
        "--reuse-port",
        action="store_true",
        help="one SO_REUSEPORT socket per process, as `ichnaea web` runs them "
        "(ichnaea/web/serve.py); by default uvicorn's own supervisor and shared socket",
    )
    args = parser.parse_args()
    # The keyword arguments of `ichnaea web` (ichnaea/cli/roles.py), minus the app.
    options = {
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "proxy_headers": False,
        "timeout_graceful_shutdown": 20,
    }
    if args.reuse_port:
        serve(
            "limit_app:factory", host=args.host, port=args.port, processes=args.processes, **options
        )
    else:
        uvicorn.run(
            "limit_app:app", host=args.host, port=args.port, workers=args.processes, **options
        )


def factory() -> Starlette:
    """The app, for ``serve`` (which takes an app factory)."""
    return app


if __name__ == "__main__":
    main()
