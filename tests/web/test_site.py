"""The public website (ichnaea.web.site): pages, static files, local assets, statistics.

Pages that read no database run on an app whose database and Redis are
down (as the health tests do); the statistics page runs on both real
backends. The map and chart libraries are the ones `make test` installs
(python -m ichnaea.web.site.vendor). The parts' own tests are in
tests/web/site/ (vendor fetch, API reference, static files, cache, sorting).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from starlette.testclient import TestClient

from ichnaea.api.openapi import openapi_document
from ichnaea.config import Settings
from ichnaea.enums import StatKey
from ichnaea.models.stats import RegionStat, Stat
from ichnaea.web.app import create_app
from ichnaea.web.site import apidoc
from ichnaea.web.site.files import EMPTY_TILE
from ichnaea.web.site.static import STATIC_DIR, StaticFiles
from tests.fixtures_app import PROXY_PEER, Seeder
from tests.fixtures_s3 import S3Bucket

DOWN_DB = "mysql://root@127.0.0.1:1/location"
DOWN_REDIS = "redis://127.0.0.1:1/0"
PAGES = ("/", "/map", "/downloads", "/stats", "/api")
IMMUTABLE = "public, max-age=31536000, immutable"


def _require_vendor() -> None:
    if not (STATIC_DIR / "vendor" / "leaflet.js").is_file():
        pytest.fail("the website's libraries are missing: run python -m ichnaea.web.site.vendor")


class Links(HTMLParser):
    """Every URL a page names: src, href, action, and url(...) in style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.ids: set[str] = set()
        self.inline_scripts: list[str] = []
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href", "action", "poster", "data"):
            if values.get(name):
                self.urls.append(str(values[name]))
        self.urls.extend(css_urls(values.get("style") or ""))
        if values.get("id"):
            self.ids.add(str(values["id"]))
        if tag == "script":
            self._script = values

    def handle_data(self, data: str) -> None:
        script = self._script
        executable = script is not None and script.get("type") != "application/json"
        if executable and script is not None and "src" not in script and data.strip():
            self.inline_scripts.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None


def css_urls(text: str) -> list[str]:
    return [m.group(2) for m in re.finditer(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)""", text)]


def parse(html: str) -> Links:
    links = Links()
    links.feed(html)
    return links


def foreign(urls: list[str]) -> list[str]:
    """URLs that would reach another host (links and loads alike)."""
    return [u for u in urls if urlsplit(u).netloc or urlsplit(u).scheme not in ("", "data")]


@pytest.fixture
def site_settings(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> Callable[..., Settings]:
    """Settings for pages that read no database: backends down, a local asset directory."""

    def make(**env: str) -> Settings:
        base = {
            "DB_READONLY_URI": DOWN_DB,
            "REDIS_URI": DOWN_REDIS,
            "ASSET_BUCKET": f"file://{tmp_path}/assets",
        }
        return make_settings(**{**base, **env})

    return make


@pytest.fixture
def site(site_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    with TestClient(create_app(site_settings()), client=PROXY_PEER) as client:
        yield client


def write_tiles(assets: Path, max_zoom: int = 5) -> None:
    tile = assets / "tiles" / "0" / "0" / "0.png"
    tile.parent.mkdir(parents=True)
    tile.write_bytes(b"\x89PNG-world")
    record = {"updated": "2026-12-01T00:10:00+00:00", "max_zoom": max_zoom, "tiles": 1}
    (assets / "tiles" / "data.json").write_text(json.dumps(record))


# Pages


def test_every_page_is_html_with_short_caching_and_a_strict_policy(client: TestClient) -> None:
    _require_vendor()
    site = client
    for path in PAGES:
        response = site.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.headers["cache-control"] == "public, max-age=300"
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "default-src 'none'" in policy
        page = parse(response.text)
        assert {"site-nav", "content", "page-title"} <= page.ids, path
        assert 'name="viewport" content="width=device-width, initial-scale=1"' in response.text
        assert page.inline_scripts == [], path
        head = site.head(path)
        assert head.status_code == 200 and head.content == b""


def test_pages_keep_the_api_json_errors(site: TestClient) -> None:
    assert site.post("/map").json()["error"]["errors"][0]["reason"] == "methodNotAllowed"
    assert site.get("/mapx").json()["error"]["errors"][0]["reason"] == "notFound"
    assert site.get("/map/").status_code == 404


def test_no_page_or_stylesheet_names_another_host(
    app_settings: Settings, seed: Seeder, tmp_path: Path
) -> None:
    _require_vendor()
    seed_statistics(seed)
    write_tiles(tmp_path / "assets")
    (tmp_path / "assets" / "export").mkdir()
    (tmp_path / "assets" / "export" / "MLS-full-cell-export-2026-12-01T000000.csv.gz").write_bytes(
        b"x"
    )
    settings = replace(app_settings, asset_bucket=f"file://{tmp_path}/assets")
    with TestClient(create_app(settings), client=PROXY_PEER) as client:
        for path in PAGES:
            page = parse(client.get(path).text)
            assert page.urls, path
            assert foreign(page.urls) == [], path
            for url in page.urls:
                if url.endswith(".css"):
                    css = client.get(url)
                    assert css.status_code == 200
                    refs = [u for u in css_urls(css.text) if not u.startswith(("#", "data:"))]
                    assert foreign(refs) == [], url
                    for ref in refs:  # relative to the stylesheet, and served
                        target = url.rsplit("/", 1)[0] + "/" + ref
                        assert client.get(target).status_code == 200, target


def test_home_shows_a_curl_for_this_instance_that_the_api_accepts(
    client: TestClient, seed: Seeder
) -> None:
    seed.api_key("site-key")
    page = client.get("/", headers={"Host": "loc.example.org:8443", "X-Forwarded-Proto": "https"})
    assert page.status_code == 200
    match = re.search(r'<pre class="code" id="geolocate-curl"><code>(.*?)</code>', page.text, re.S)
    assert match is not None
    curl = match.group(1)
    assert 'curl -s "https://loc.example.org:8443/v1/geolocate?key=$KEY"' in curl
    body = json.loads(curl.split("-d '", 1)[1].rsplit("'", 1)[0])
    answer = client.post("/v1/geolocate?key=site-key", json=body)
    # Well-formed: nothing is known of these networks, and the IP is not asked.
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["errors"][0]["reason"] == "notFound"
    assert "/v2/geosubmit" in page.text and "NeoStumbler" in page.text


@pytest.mark.parametrize("confidence", [95, 68])
def test_home_states_the_confidence_of_the_radius(
    site_settings: Callable[..., Settings], confidence: int
) -> None:
    settings = replace(site_settings(), locate_confidence=confidence)
    with TestClient(create_app(settings), client=PROXY_PEER) as client:
        text = client.get("/").text
    assert f"true position {confidence} % of the time" in text


def test_home_ignores_the_scheme_an_untrusted_peer_claims(
    site_settings: Callable[..., Settings],
) -> None:
    with TestClient(create_app(site_settings()), client=("203.0.113.9", 4000)) as client:
        text = client.get("/", headers={"X-Forwarded-Proto": "https"}).text
    assert 'curl -s "http://testserver/v1/geolocate' in text


# Map


def test_map_without_tiles_says_how_to_make_them(site: TestClient) -> None:
    response = site.get("/map")
    page = parse(response.text)
    assert "map-note" in page.ids and "map" not in page.ids
    assert "ichnaea map" in response.text
    # Nothing to draw: no map library loaded.
    assert [u for u in page.urls if "/vendor/" in u] == []


def test_map_with_tiles_shows_them_at_the_rendered_zooms(
    site_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    _require_vendor()
    write_tiles(tmp_path / "assets", max_zoom=7)
    with TestClient(create_app(site_settings()), client=PROXY_PEER) as client:
        text = client.get("/map").text
        page = parse(text)
        assert "map" in page.ids and "map-note" not in page.ids and "map-updated" in page.ids
        assert 'data-tiles="/assets/tiles/{z}/{x}/{y}.png"' in text
        assert 'data-max-zoom="7"' in text and 'data-base-url=""' in text
        scripts = [u for u in page.urls if u.endswith(".js")]
        assert [u.split("/")[-1].split(".")[0] for u in scripts] == ["leaflet", "map"]
        tile = client.get("/assets/tiles/0/0/0.png")
        assert tile.content == b"\x89PNG-world"
        assert tile.headers["cache-control"] == "public, max-age=3600"
        # Not drawn (no data there): an empty tile, not a failed request.
        empty = client.get("/assets/tiles/3/4/2.png")
        assert empty.status_code == 200 and empty.content == EMPTY_TILE
        assert empty.headers["content-type"] == "image/png"
        for bad in ("tiles/1/2/0.png", "tiles/0/0/0.jpg", "tiles/../x", "other/a", "tiles/.hid"):
            assert client.get(f"/assets/{bad}").status_code == 404, bad


def test_map_of_a_run_that_drew_nothing_says_so(
    site_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    tiles = tmp_path / "assets" / "tiles"
    tiles.mkdir(parents=True)
    (tiles / "data.json").write_text(json.dumps({"max_zoom": 11, "tiles": 0}))
    with TestClient(create_app(site_settings()), client=PROXY_PEER) as client:
        text = client.get("/map").text
    page = parse(text)
    assert "map-note" in page.ids and "map" not in page.ids
    assert "found no\nobservations to draw yet" in text


def test_map_with_asset_url_and_base_layer_names_both_hosts(
    site_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    _require_vendor()
    write_tiles(tmp_path / "assets")
    settings = site_settings(
        ASSET_URL="https://assets.example.org/pub/",
        MAP_BASE_URL="https://base.example.net/{z}/{x}/{y}.png",
        MAP_BASE_ATTRIBUTION="&copy; Base",
    )
    with TestClient(create_app(settings), client=PROXY_PEER) as client:
        response = client.get("/map")
        # Served from ASSET_URL, so not locally.
        assert client.get("/assets/tiles/0/0/0.png").status_code == 404
    assert 'data-tiles="https://assets.example.org/pub/tiles/{z}/{x}/{y}.png"' in response.text
    assert 'data-base-url="https://base.example.net/{z}/{x}/{y}.png"' in response.text
    assert 'data-base-attribution="&amp;copy; Base"' in response.text
    policy = response.headers["content-security-policy"]
    assert "img-src 'self' data: https://assets.example.org https://base.example.net" in policy


def test_map_without_an_asset_bucket_says_what_to_set(
    site_settings: Callable[..., Settings],
) -> None:
    with TestClient(create_app(site_settings(ASSET_BUCKET="")), client=PROXY_PEER) as client:
        text = client.get("/map").text
        assert client.get("/assets/tiles/0/0/0.png").status_code == 404
    assert "Set <code>ASSET_BUCKET</code>" in text


def test_map_without_the_library_says_what_to_run(
    site_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = tmp_path / "static"
    bare.mkdir()
    for name in ("site.css", "favicon.svg", "map.js", "stats.js"):
        (bare / name).write_bytes((STATIC_DIR / name).read_bytes())
    monkeypatch.setattr("ichnaea.web.site.static.STATIC_DIR", bare)
    write_tiles(tmp_path / "assets")
    with TestClient(create_app(site_settings()), client=PROXY_PEER) as client:
        response = client.get("/map")
    page = parse(response.text)
    assert response.status_code == 200
    assert "map-library-note" in page.ids and "map" not in page.ids
    assert "python -m ichnaea.web.site.vendor" in response.text


# Downloads


def test_downloads_list_the_local_exports_newest_first(
    site_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    export = tmp_path / "assets" / "export"
    export.mkdir(parents=True)
    names = {
        "MLS-full-cell-export-2026-11-30T000000.csv.gz": 2_500_000,
        "MLS-full-cell-export-2026-12-01T000000.csv.gz": 2_600_000,
        "MLS-diff-cell-export-2026-12-01T050000.csv.gz": 300,
        "MLS-diff-cell-export-2026-12-01T060000.csv.gz": 400,
        "notes.txt": 10,
    }
    for name, size in names.items():
        (export / name).write_bytes(b"\0" * size)
    with TestClient(create_app(site_settings()), client=PROXY_PEER) as client:
        response = client.get("/downloads")
        page = parse(response.text)
        links = [u for u in page.urls if u.startswith("/assets/export/")]
        assert links == [
            "/assets/export/MLS-full-cell-export-2026-12-01T000000.csv.gz",
            "/assets/export/MLS-full-cell-export-2026-11-30T000000.csv.gz",
            "/assets/export/MLS-diff-cell-export-2026-12-01T060000.csv.gz",
            "/assets/export/MLS-diff-cell-export-2026-12-01T050000.csv.gz",
        ]
        assert {"exports-full", "exports-diff", "licence", "columns"} <= page.ids
        assert "2.5 MiB" in response.text and "400 bytes" in response.text
        assert "2026-12-01 06:00" in response.text and "notes.txt" not in response.text
        assert "CC0" in response.text
        for column in ("radio", "mcc", "net", "area", "cell", "unit", "averageSignal"):
            assert f"<code>{column}</code>" in response.text
        download = client.get(links[0])
        assert download.status_code == 200 and len(download.content) == 2_600_000
        assert download.headers["content-type"] == "application/gzip"


def test_downloads_without_exports_say_when_they_come(site: TestClient) -> None:
    response = site.get("/downloads")
    page = parse(response.text)
    assert "downloads-note" in page.ids and "exports-full" not in page.ids
    assert "ichnaea export cells" in response.text


def test_downloads_and_map_read_a_bucket_through_the_store(
    site_settings: Callable[..., Settings], s3_bucket: S3Bucket
) -> None:
    for key, body in (
        ("pub/export/MLS-full-cell-export-2026-12-01T000000.csv.gz", b"z"),
        ("pub/tiles/data.json", json.dumps({"max_zoom": 4, "tiles": 9}).encode()),
    ):
        s3_bucket.client.put_object(Bucket=s3_bucket.name, Key=key, Body=body)
    settings = site_settings(
        ASSET_BUCKET=f"s3://{s3_bucket.name}/pub", S3_ENDPOINT_URL=s3_bucket.endpoint_url
    )
    with TestClient(create_app(settings), client=PROXY_PEER) as client:
        downloads = client.get("/downloads").text
        map_page = client.get("/map").text
    # Listed, but a bucket without ASSET_URL has no link to give.
    assert "MLS-full-cell-export-2026-12-01T000000.csv.gz" in downloads
    assert "/assets/export/" not in downloads and "set <code>ASSET_URL</code>" in downloads
    assert "9 tiles, zoom levels 0 to 4" in map_page and "set <code>ASSET_URL</code>" in map_page


# Statistics


def seed_statistics(seed: Seeder) -> None:
    stat = Stat.__table__
    for day, values in (
        (date(2026, 11, 30), {StatKey.unique_wifi: 100, StatKey.wifi: 1000, StatKey.cell: 50}),
        (date(2026, 12, 1), {StatKey.unique_wifi: 150, StatKey.wifi: 1600, StatKey.cell: 70}),
    ):
        for key, value in values.items():
            seed.insert(stat, key=int(key), time=day, value=value)  # type: ignore[arg-type]
    regions = RegionStat.__table__
    seed.insert(regions, region="DE", gsm=5, wcdma=1, lte=9, blue=2, wifi=300)  # type: ignore[arg-type]
    seed.insert(regions, region="FR", gsm=7, wcdma=0, lte=3, blue=8, wifi=20)  # type: ignore[arg-type]
    seed.insert(regions, region="AT", gsm=1, wcdma=2, lte=1, blue=0, wifi=20)  # type: ignore[arg-type]


def region_order(html: str) -> list[str]:
    return re.findall(r'<tr data-region="([A-Z]{2})">', html)


def test_stats_show_counters_and_a_sortable_region_table(client: TestClient, seed: Seeder) -> None:
    _require_vendor()
    seed_statistics(seed)
    response = client.get("/stats")
    assert response.status_code == 200
    page = parse(response.text)
    assert {"stats-totals", "chart-stations", "chart-observations", "region-table"} <= page.ids
    assert re.search(r'id="totals-wifi">.*?150.*?1,600', response.text, re.S)
    data = json.loads(re.search(r'id="stats-data">(.*?)</script>', response.text, re.S)[1])  # type: ignore[index]
    midnights = [datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)]
    assert data["days"] == [int(moment.timestamp()) for moment in midnights]
    assert data["stations"]["wifi"] == [100, 150]
    assert data["observations"]["cell"] == [50, 70]
    assert data["stations"]["blue"] == [None, None]
    # By name (Austria, France, Germany), then by count with ties by name.
    assert region_order(response.text) == ["AT", "FR", "DE"]
    assert "Austria" in response.text
    by_wifi = client.get("/stats?sort=wifi&order=desc").text
    assert region_order(by_wifi) == ["DE", "AT", "FR"]
    assert re.search(r'id="col-wifi"[^>]*aria-sort="descending"', by_wifi)
    # The active column's link flips the order; the others start descending.
    assert 'href="?sort=wifi&amp;order=asc#regions"' in by_wifi
    assert 'href="?sort=lte&amp;order=desc#regions"' in by_wifi
    assert region_order(client.get("/stats?sort=blue").text) == ["FR", "DE", "AT"]
    assert region_order(client.get("/stats?sort=name&order=desc").text) == ["DE", "FR", "AT"]
    assert region_order(client.get("/stats?sort=drop+table").text) == ["AT", "FR", "DE"]
    assert re.search(r'id="region-totals">.*?13.*?3.*?13.*?10.*?340', by_wifi, re.S)


def test_stats_are_cached_briefly(client: TestClient, seed: Seeder) -> None:
    assert "stats-note" in parse(client.get("/stats").text).ids
    seed_statistics(seed)
    # Within the cache time the page still shows what it read first.
    assert "stats-note" in parse(client.get("/stats").text).ids


def test_stats_with_the_database_down_say_so(site: TestClient) -> None:
    response = site.get("/stats")
    assert response.status_code == 503
    assert response.headers["cache-control"] == "no-store"
    assert "stats-note" in parse(response.text).ids


# API reference


def test_api_page_lists_every_path_and_error_of_the_document(site: TestClient) -> None:
    document = openapi_document()
    response = site.get("/api")
    assert response.status_code == 200
    page = parse(response.text)
    assert {"api-toc", "api-endpoints", "error-catalogue"} <= page.ids
    for path in document["paths"]:
        assert f"<code>{path}</code>" in response.text, path
    for entry in document["components"]["x-error-catalogue"]:
        anchor = apidoc.error_anchor(entry["schema"].rsplit("/", 1)[1])
        assert anchor in page.ids and f"<code>{entry['reason']}</code>" in response.text
    # Every in-page link lands on an element of the page.
    targets = {u[1:] for u in page.urls if u.startswith("#")}
    assert targets and targets <= page.ids, targets - page.ids
    assert "/openapi.json" in page.urls


# Static files


def test_static_files_have_hashed_names_and_long_caching(site: TestClient) -> None:
    _require_vendor()
    page = parse(site.get("/map").text)
    css = next(u for u in page.urls if "/site." in u)
    assert re.fullmatch(r"/static/site\.[0-9a-f]{16}\.css", css)
    response = site.get(css)
    assert response.status_code == 200
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.headers["content-type"].startswith("text/css")
    etag = response.headers["etag"]
    assert site.get(css, headers={"If-None-Match": etag}).status_code == 304
    assert site.get("/static/site.css").status_code == 404
    assert site.get("/static/site.0000000000000000.css").status_code == 404
    assert site.head(css).status_code == 200


def test_static_text_is_sent_gzipped_when_accepted(site: TestClient) -> None:
    _require_vendor()
    static = StaticFiles()
    url = static.path("vendor/leaflet.js")
    plain = site.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    zipped = site.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == plain.content  # httpx inflated it
    assert int(zipped.headers["content-length"]) < len(plain.content) / 2
