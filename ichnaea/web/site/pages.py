"""The public website served by the web role next to the API: its pages and their routes.

:func:`routes` returns what :func:`ichnaea.web.app.create_app` adds:

=================== ==============================================================
``/``               what the service is, a ``curl`` for this instance, how to contribute
``/map``            the coverage tiles of ``ichnaea map`` on a Leaflet map
``/downloads``      the public cell exports, their licence and columns
``/stats``          daily counters as charts, region counts as a sortable table
``/api``            the API reference, rendered from the OpenAPI document
``/static/{name}``  content-hashed CSS, scripts, images (:mod:`.static`)
``/assets/{key}``   tiles and exports of a local ``ASSET_BUCKET`` (:mod:`.files`)
=================== ==============================================================

Pages are Jinja2 templates rendered on the server; the only scripts are the
map and the charts (``static/*.js``, no inline script, so the pages carry a
strict ``Content-Security-Policy``), and every page works without them.
Nothing a page loads comes from another host, except the tiles of a
configured ``ASSET_URL`` and base map (``MAP_BASE_URL``), which the policy
names. What the pages read (the tile record, the export listing, the
statistics) is cached for :data:`DATA_TTL_S` per process; the pages
themselves for :data:`PAGE_MAX_AGE_S` in browsers.

Errors keep the API's JSON answers (unknown paths, other methods); a page
whose data cannot be read (database or bucket down) says so with a 503.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import botocore.exceptions
import jinja2
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

import ichnaea
from ichnaea.api.openapi import openapi_document
from ichnaea.config import Settings
from ichnaea.objectstore import ObjectStore
from ichnaea.repositories.statistics import read_daily_counts, read_region_counts
from ichnaea.web.lifespan import AppState, app_state
from ichnaea.web.site import apidoc, files, stats
from ichnaea.web.site.cache import TtlCache
from ichnaea.web.site.static import StaticFiles
from ichnaea.web.site.vendor import COMMAND as VENDOR_COMMAND

log = logging.getLogger(__name__)

T = TypeVar("T")

TEMPLATES_DIR = Path(__file__).parent / "templates"
PAGE_MAX_AGE_S = 300
DATA_TTL_S = 300
# Diffs are hourly: the newest two days of them; every full export is listed.
MAX_DIFFS_LISTED = 48
# Zoom limit of a base map shown without coverage tiles.
BASE_MAX_ZOOM = 18
STORE_ERRORS = (OSError, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)

LEAFLET = ("vendor/leaflet.js", "vendor/leaflet.css")
UPLOT = ("vendor/uPlot.iife.min.js", "vendor/uPlot.min.css")


def public_base_url(request: Request, settings: Settings) -> str:
    """This instance's URL as the client sees it: the Host it asked, the scheme a trusted
    proxy names in ``X-Forwarded-Proto`` (the TLS it ended), and the mount path."""
    scheme = request.url.scheme
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    peer = request.client.host if request.client else ""
    if forwarded in ("http", "https"):
        try:
            trusted = ipaddress.ip_address(peer) in settings.forwarded_allow_ips
        except ValueError:
            trusted = settings.forwarded_allow_ips.everyone
        if trusted:
            scheme = forwarded
    return f"{scheme}://{request.url.netloc}{request.scope.get('root_path', '')}"


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def content_security_policy(settings: Settings) -> str:
    """Same origin for everything; images also from the tile hosts an operator configured."""
    images = ["'self'", "data:"]
    for url in (settings.asset_url, settings.map_base_url):
        origin = _origin(url)
        if origin is not None and origin not in images:
            images.append(origin)
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {' '.join(images)}",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size:,} bytes" if unit == "bytes" else f"{value:,.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class Site:
    """The pages of one app: templates, static files and a short cache of their data."""

    def __init__(self, settings: Settings, *, static: StaticFiles | None = None) -> None:
        self.settings = settings
        self.static = static or StaticFiles()
        self.cache = TtlCache(DATA_TTL_S)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=jinja2.StrictUndefined,
        )
        self.templates.filters["size"] = human_size
        self.templates.filters["markup"] = apidoc.inline_markup
        self._reference: apidoc.Reference | None = None
        self.csp = content_security_policy(settings)

    def has(self, names: tuple[str, ...]) -> bool:
        return all(name in self.static for name in names)

    def render(
        self, request: Request, template: str, status_code: int = 200, **context: Any
    ) -> Response:
        root = request.scope.get("root_path", "")
        static: Callable[[str], str] = lambda name: root + self.static.path(name)  # noqa: E731
        html = self.templates.get_template(template).render(
            root=root,
            path=request.url.path[len(root) :],
            static=static,
            version=ichnaea.__version__,
            vendor_command=VENDOR_COMMAND,
            **context,
        )
        cache = f"public, max-age={PAGE_MAX_AGE_S}" if status_code == 200 else "no-store"
        headers = {
            "Cache-Control": cache,
            "Content-Security-Policy": self.csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        }
        return HTMLResponse(html, status_code=status_code, headers=headers)

    async def home(self, request: Request) -> Response:
        return self.render(
            request,
            "home.html",
            base_url=public_base_url(request, self.settings),
            confidence=self.settings.locate_confidence,
        )

    async def map(self, request: Request) -> Response:
        state = app_state(request)
        root = request.scope.get("root_path", "")
        record, failed = await self._from_store(state.assets, "tiles", files.read_tile_record)
        url = files.public_url(self.settings, state.assets, files.TILE_TEMPLATE, root)
        return self.render(
            request,
            "map.html",
            **self._store_context(state, failed=failed),
            record=record,
            # A run over an empty datamap records 0 tiles: nothing to draw.
            tile_url=url if record is not None and record.tiles > 0 else None,
            max_zoom=record.max_zoom if record is not None else BASE_MAX_ZOOM,
            base_url=self.settings.map_base_url,
            base_attribution=self.settings.map_base_attribution,
            leaflet=self.has(LEAFLET),
        )

    async def _from_store(
        self, store: ObjectStore | None, key: str, read: Callable[[ObjectStore], T]
    ) -> tuple[T | None, bool]:
        """``read(store)``, cached, and whether it failed; (None, False) without a store."""
        if store is None:
            return None, False
        try:
            return await self.cache.get(key, lambda: run_in_threadpool(read, store)), False
        except STORE_ERRORS as exc:
            log.warning("site: cannot read %s from the asset store: %s", key, exc)
            return None, True

    def _store_context(self, state: AppState, *, failed: bool) -> dict[str, Any]:
        """What the map and downloads pages say about the store; 503 when it failed."""
        directory = files.local_directory(self.settings, state.assets)
        return {
            "status_code": 503 if failed else 200,
            "store_failed": failed,
            "has_store": state.assets is not None,
            "local_dir": str(directory.directory) if directory is not None else None,
        }

    async def downloads(self, request: Request) -> Response:
        state = app_state(request)
        root = request.scope.get("root_path", "")
        listed, failed = await self._from_store(state.assets, "exports", files.list_exports)
        exports = listed or []
        links = {e.key: files.public_url(self.settings, state.assets, e.key, root) for e in exports}
        diffs = [export for export in exports if export.kind == "diff"]
        return self.render(
            request,
            "downloads.html",
            **self._store_context(state, failed=failed),
            full=[export for export in exports if export.kind == "full"],
            diffs=diffs[:MAX_DIFFS_LISTED],
            older_diffs=max(0, len(diffs) - MAX_DIFFS_LISTED),
            links=links,
        )

    async def statistics(self, request: Request) -> Response:
        state = app_state(request)
        try:
            daily, regions = await self.cache.get(
                "stats", lambda: run_in_threadpool(_read_statistics, state)
            )
        except SQLAlchemyError as exc:
            log.warning("stats page: database unavailable: %s", exc.__class__.__name__)
            return self.render(request, "stats.html", status_code=503, unavailable=True)
        column, descending = stats.parse_sort(request.query_params)
        return self.render(
            request,
            "stats.html",
            unavailable=False,
            daily=daily,
            types=stats.STATION_TYPES,
            chart=daily.chart_data(),
            regions=stats.sort_regions(regions, column, descending=descending),
            totals=stats.region_totals(regions),
            columns=stats.REGION_COLUMNS,
            sort=column,
            descending=descending,
            uplot=self.has(UPLOT),
        )

    async def api(self, request: Request) -> Response:
        if self._reference is None:  # the document does not change while the process runs
            self._reference = apidoc.api_reference(openapi_document())
        return self.render(
            request,
            "api.html",
            ref=self._reference,
            base_url=public_base_url(request, self.settings),
        )

    async def asset(self, request: Request) -> Response:
        directory = files.local_directory(self.settings, app_state(request).assets)
        if directory is None:
            raise HTTPException(404)
        return files.serve_local(directory, request.path_params["key"])


def _read_statistics(state: AppState) -> tuple[stats.DailySeries, list[stats.RegionRow]]:
    with state.db.connect() as connection:
        daily = read_daily_counts(connection)
        regions = read_region_counts(connection)
    return stats.daily_series(daily), stats.region_rows(regions, state.regions)


def routes(settings: Settings) -> list[Route]:
    """The website's routes (see the module docstring); GET, and HEAD with it."""
    site = Site(settings)
    return [
        Route("/", site.home, methods=["GET"]),
        Route("/map", site.map, methods=["GET"]),
        Route("/downloads", site.downloads, methods=["GET"]),
        Route("/stats", site.statistics, methods=["GET"]),
        Route("/api", site.api, methods=["GET"]),
        Route("/static/{name:path}", site.static.serve, methods=["GET"]),
        Route("/assets/{key:path}", site.asset, methods=["GET"]),
    ]
