"""Assemble the web application: routes, middleware, error handlers, lifespan.

``create_app(settings)`` is the only constructor; nothing is created at
import time. Resources (database engine, Redis pool, GeoIP reader) are
opened in the lifespan and reach handlers through typed state.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.routing import Route

from ichnaea.api.locate import batch as locate_batch
from ichnaea.api.locate import endpoints as locate
from ichnaea.api.openapi import openapi_json
from ichnaea.api.submit import endpoints as submit
from ichnaea.config import Settings
from ichnaea.web import health
from ichnaea.web.errors import EXCEPTION_HANDLERS
from ichnaea.web.front import ServiceApp
from ichnaea.web.lifespan import make_lifespan, metrics_of
from ichnaea.web.middleware import InternalErrorMiddleware
from ichnaea.web.site import pages as site

HEALTH_METHODS = ["GET", "HEAD", "POST"]
API_METHODS = ["GET", "HEAD", "POST"]

# Paths whose responses carry CORS headers (the public API, not health checks).
API_PATHS = (
    "/v1/geolocate",
    "/v1/geolocate/batch",
    "/v1/country",
    "/v1/submit",
    "/v1/geosubmit",
    "/v2/geosubmit",
    # Read by API tools on other origins.
    "/openapi.json",
)


def create_app(settings: Settings) -> ServiceApp:
    routes = [
        Route("/v1/geolocate", locate.geolocate, methods=API_METHODS),
        # POST only: a batch needs a body.
        Route("/v1/geolocate/batch", locate_batch.geolocate_batch, methods=["POST"]),
        Route("/v1/country", locate.country, methods=API_METHODS),
        Route("/v2/geosubmit", submit.geosubmit_v2, methods=API_METHODS),
        Route("/v1/geosubmit", submit.geosubmit_v1, methods=API_METHODS),
        Route("/v1/submit", submit.submit_v0, methods=API_METHODS),
        Route("/__lbheartbeat__", health.lbheartbeat, methods=HEALTH_METHODS),
        Route("/__heartbeat__", health.heartbeat, methods=HEALTH_METHODS),
        Route("/__version__", health.version, methods=HEALTH_METHODS),
        Route("/contribute.json", health.contribute, methods=HEALTH_METHODS),
        Route("/openapi.json", openapi_json, methods=["GET", "HEAD"]),
        # The public website: home, map, downloads, statistics, API reference.
        *site.routes(settings),
    ]
    return ServiceApp(
        routes=routes,
        cors_paths=API_PATHS,
        max_body_bytes=settings.max_body_bytes,
        get_metrics=metrics_of,
        log_requests=settings.request_log,
        # For what the front hands to Starlette (unknown paths, other methods).
        middleware=[Middleware(InternalErrorMiddleware)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=make_lifespan(settings),
    )
