"""The website in a real browser: headless Chromium against ``ichnaea web`` over a socket.

A data directory with the embedded defaults (SQLite, embedded Redis, local
assets) is filled the way an operator's would be, through the CLI:
``ichnaea migrate``, ``ichnaea import cells`` (a generated MLS file, which
also fills the region statistics), ``ichnaea export cells`` (the public
export the downloads page lists), datamap rows and sixty days of counters
written to the database, ``ichnaea map`` (the tiles). Then one ``ichnaea
web`` process serves it, and Chromium (``tests/web/_browser.py``) opens
every page at a desktop width and at 360 px, a phone's:

* no console error and no request to another host (the browser's own
  network log, every request of the page and of the scripts it ran);
* nothing wider than the window at 360 px (no sideways scrolling);
* the map draws the rendered tiles, the statistics charts draw their lines.

Screenshots of every page at both widths go to ``docs/screenshots/`` when
``ICHNAEA_SCREENSHOTS`` names a directory (``ICHNAEA_SCREENSHOTS=docs/screenshots
.venv/bin/python -m pytest -n0 tests/web/test_browser.py``); the README links
the committed ones.
"""

from __future__ import annotations

import csv
import gzip
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from ichnaea.codecs import datamap_shard_id, encode_datamap_grid
from ichnaea.enums import StatKey
from ichnaea.models.stats import DATAMAP_SHARDS, Stat
from ichnaea.pipeline.public.cellexport import CSV_HEADER
from tests._support import embedded_env
from tests.test_end_to_end import free_port
from tests.web._browser import Browser, chromium

pytestmark = pytest.mark.slow

PAGES = {"home": "/", "map": "/map", "downloads": "/downloads", "stats": "/stats", "api": "/api"}
DESKTOP = (1280, 900)
PHONE = (360, 740)
MAX_ZOOM = 6
START_TIMEOUT_S = 60.0
COMMAND_TIMEOUT_S = 180.0
# Generated cells around a few cities: (lat, lon, mcc).
CITIES = [(52.52, 13.40, 262), (48.86, 2.35, 208), (40.42, -3.70, 214), (51.51, -0.13, 234)]


def _run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ichnaea", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    assert done.returncode == 0, f"ichnaea {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def _cells_file(path: Path, rng: random.Random) -> int:
    now = int(datetime.now(UTC).timestamp())
    rows = 0
    with gzip.open(path, "wt", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_HEADER)
        for lat, lon, mcc in CITIES:
            for cell in range(150):
                writer.writerow(["LTE", mcc, 1, 1000 + cell // 30, 100_000 + cell, "",
                                 f"{lon + rng.uniform(-0.2, 0.2):.7f}",
                                 f"{lat + rng.uniform(-0.2, 0.2):.7f}",
                                 rng.randint(300, 3000), rng.randint(1, 500), 1,
                                 now - 86400 * 30, now - 3600, ""])  # fmt: skip
                rows += 1
    return rows


def _fill_database(db_url: str, rng: random.Random) -> None:
    """Datamap grid cells around the cities and sixty days of growing counters."""
    engine = sa.create_engine(db_url)
    today = date.today()
    try:
        with engine.begin() as conn:
            grids: dict[str, set[tuple[int, int]]] = {}
            for lat, lon, _ in CITIES:
                for _ in range(1500):
                    point = (round((lat + rng.gauss(0, 0.15)) * 1000),
                             round((lon + rng.gauss(0, 0.25)) * 1000))  # fmt: skip
                    grids.setdefault(datamap_shard_id(*point), set()).add(point)
            for shard_id, points in grids.items():
                grid_rows = [
                    {"grid": encode_datamap_grid(*p), "created": today, "modified": today}
                    for p in sorted(points)
                ]
                conn.execute(sa.insert(DATAMAP_SHARDS[shard_id]), grid_rows)
            rows = []
            for key, start, step in (
                (StatKey.wifi, 40_000, 2_500),
                (StatKey.unique_wifi, 9_000, 300),
                (StatKey.cell, 20_000, 900),
                (StatKey.unique_cell, 600, 4),
                (StatKey.blue, 3_000, 150),
                (StatKey.unique_blue, 800, 20),
            ):
                value = start
                for days_ago in range(60, 0, -1):
                    value += int(step * rng.uniform(0.5, 1.5))
                    rows.append({"key": int(key), "time": today - timedelta(days=days_ago),
                                 "value": value})  # fmt: skip
            conn.execute(sa.insert(Stat), rows)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of an ``ichnaea web`` serving generated data."""
    tmp = tmp_path_factory.mktemp("browser")
    data_dir = tmp / "data"
    port = free_port()
    env = embedded_env(data_dir, PORT=str(port), WEB_PROCESSES="1")
    rng = random.Random(13)
    _run(env, "migrate")
    cells = tmp / "cells.csv.gz"
    _cells_file(cells, rng)
    _run(env, "import", "cells", str(cells))
    _run(env, "export", "cells")
    _fill_database(f"sqlite:///{data_dir / 'ichnaea.sqlite'}", rng)
    _run(env, "map", "--max-zoom", str(MAX_ZOOM), "--processes", "1")
    assert (data_dir / "assets" / "tiles" / "data.json").is_file()
    assert list((data_dir / "assets" / "export").glob("MLS-full-cell-export-*.csv.gz"))

    log_path = tmp / "web.log"
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ichnaea", "web"], env=env, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                try:
                    if httpx.get(f"{base}/__lbheartbeat__", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as opened:
        yield opened


def _screenshot(browser: Browser, name: str) -> None:
    where = os.environ.get("ICHNAEA_SCREENSHOTS")
    if where:
        browser.screenshot(Path(where) / f"{name}.png")


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("page", PAGES)
def test_page_loads_clean_and_stays_on_the_machine(
    site: str, browser: Browser, page: str, size: tuple[int, int]
) -> None:
    width, height = size
    load = browser.open(site + PAGES[page], width=width, height=height)
    if page == "map":
        browser.wait_for("document.querySelector('#map[data-ready]')")
        browser.wait_for("document.querySelectorAll('img.leaflet-tile-loaded').length > 0")
    if page == "stats":
        browser.wait_for("document.querySelector('#chart-stations[data-ready]')")
    load.urls += (later := browser.more_log()).urls
    load.console += later.console
    host = site.removeprefix("http://")
    assert load.urls and load.urls[0] == site + PAGES[page]
    assert load.foreign(host) == [], load.urls
    assert load.errors() == [], load.console
    assert load.failed == [], load.failed
    # Usable on a phone: nothing makes the page scroll sideways.
    assert browser.page_width() <= width
    _screenshot(browser, f"{page}-{'phone' if width == PHONE[0] else 'desktop'}")


def test_map_shows_the_rendered_tiles(site: str, browser: Browser) -> None:
    browser.open(site + "/map", width=DESKTOP[0], height=DESKTOP[1])
    browser.wait_for("document.querySelectorAll('img.leaflet-tile-loaded').length > 0")
    tiles = browser.driver.execute_script(
        "return Array.from(document.querySelectorAll('img.leaflet-tile-loaded'))"
        ".map(img => [img.src, img.naturalWidth])"
    )
    assert tiles, "no tile loaded"
    assert all(src.startswith(site + "/assets/tiles/") for src, _ in tiles), tiles
    # Rendered tiles are 256 px; where the run drew nothing the site sends its empty tile.
    assert any(width == 256 for _, width in tiles), tiles
    assert all(width > 0 for _, width in tiles), tiles
    # Some tile holds coverage: a pixel that is not transparent.
    painted = browser.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const imgs = Array.from(document.querySelectorAll('img.leaflet-tile-loaded'));
        let count = 0;
        Promise.all(imgs.map(img => fetch(img.src).then(r => r.blob())
            .then(b => createImageBitmap(b)).then(bitmap => {
                const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
                const ctx = canvas.getContext('2d');
                ctx.drawImage(bitmap, 0, 0);
                const data = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
                for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) { count++; break; } }
            }))).then(() => done(count), () => done(-1));
        """
    )
    assert painted > 0
    # The zoom limit is the one the tiles were rendered to.
    max_zoom = browser.driver.execute_script(
        "return document.querySelector('#map').dataset.maxZoom"
    )
    assert max_zoom == str(MAX_ZOOM)


def test_statistics_charts_draw_lines(site: str, browser: Browser) -> None:
    browser.open(site + "/stats", width=DESKTOP[0], height=DESKTOP[1])
    for chart in ("#chart-stations", "#chart-observations"):
        browser.wait_for(f"document.querySelector('{chart}[data-ready]')")
        # Pixels of the chart's canvas that are drawn on (lines, axes, labels).
        drawn = browser.driver.execute_script(
            f"""
            const canvas = document.querySelector('{chart} canvas');
            if (!canvas) return -1;
            const data = canvas.getContext('2d')
                .getImageData(0, 0, canvas.width, canvas.height).data;
            let n = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
            return n;
            """
        )
        assert drawn > 1000, (chart, drawn)
    rows = browser.driver.execute_script(
        "return document.querySelectorAll('#region-table tbody tr').length"
    )
    # The import filled the region statistics: Germany, France, Spain, the UK.
    assert rows >= 4
