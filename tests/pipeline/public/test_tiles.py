"""Coverage tiles from the datamap (spec pipeline.md section 12) and the asset sync."""

from __future__ import annotations

import struct
import zlib
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ichnaea.codecs import DATAMAP_SHARD_IDS, datamap_shard_id, encode_datamap_grid
from ichnaea.models.stats import DATAMAP_SHARDS
from ichnaea.objectstore import DirectoryStore, asset_store, sync_directory
from ichnaea.pipeline.public.tiles import (
    TILE_PX,
    encode_png,
    grid_points,
    mercator_px,
    points_per_grid,
    read_points,
    render_tiles,
    tiles_of_zoom,
)
from tests.fixtures_s3 import S3Bucket

TODAY = date(2026, 11, 30)


def decode_png(data: bytes) -> tuple[bytes, bytes, np.ndarray]:
    """(palette, transparency, index image) of a PNG written by encode_png; checks every CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: dict[bytes, bytes] = {}
    at = 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        chunks[kind] = body
        at += 12 + length
    width, height, depth, color_type, *_ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, color_type) == (8, 3)
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(height, width + 1)
    assert not rows[:, 0].any()  # filter "none" on every row
    assert b"IEND" in chunks
    return chunks[b"PLTE"], chunks[b"tRNS"], rows[:, 1:]


def test_points_per_grid_fade_by_month_at_most_six_quirk_21_kept() -> None:
    """At most 6 points per grid cell, as the code did (the docs said 0 to 13)."""
    days = np.array([-3, 0, 14, 15, 45, 89, 90, 330, 344, 345, 400])
    assert points_per_grid(days).tolist() == [6, 6, 6, 6, 5, 5, 5, 1, 1, 0, 0]


def test_grid_points_are_fixed_and_inside_their_grid_cell() -> None:
    lat = np.array([51500, -33870, 0])
    lon = np.array([-100, 151210, 0])
    count = np.array([6, 6, 6])
    plat, plon = grid_points(lat, lon, count)
    assert len(plat) == 18  # the spec's 3 rows with num 0 -> 18 lines
    again = grid_points(lat, lon, count)
    assert np.array_equal(plat, again[0]) and np.array_equal(plon, again[1])
    cell_lat = np.repeat(lat, 6) / 1000
    cell_lon = np.repeat(lon, 6) / 1000
    assert np.all(np.abs(plat - cell_lat) <= 0.0005) and np.all(np.abs(plon - cell_lon) <= 0.0005)
    assert len({(a, b) for a, b in zip(plat, plon, strict=True)}) == 18  # no two alike


def test_mercator_pixels_of_known_places() -> None:
    x, y = mercator_px(np.array([0.0, 85.06, -89.0]), np.array([0.0, -180.0, 180.0]), 256)
    assert x.tolist() == [128, 0, 255]
    assert y.tolist() == [128, 0, 255]


def test_a_dot_near_a_tile_edge_is_drawn_on_both_tiles() -> None:
    # 0.0001 degrees east of the prime meridian: tile x 1 at zoom 1, pixel 0.
    tiles = {
        (x, y): image for x, y, image in tiles_of_zoom(np.array([10.0]), np.array([0.0001]), 1)
    }
    assert set(tiles) == {(0, 0), (1, 0)}
    assert tiles[(1, 0)][:, 0].max() > 0 and tiles[(0, 0)][:, -1].max() > 0
    assert tiles[(0, 0)][:, :-2].max() == 0  # only the dot's edge reaches into tile 0


def test_png_is_valid_palette_png_of_the_alpha_image() -> None:
    alpha = np.zeros((TILE_PX, TILE_PX), np.uint8)
    alpha[10, 20] = 200
    alpha[255, 0] = 7
    palette, transparency, image = decode_png(encode_png(alpha))
    assert palette == bytes((0x00, 0x88, 0xFF)) * 256
    assert transparency == bytes(range(256))
    assert np.array_equal(image, alpha)


def add_grid(engine: Engine, lat_deg: float, lon_deg: float, modified: date) -> None:
    lat, lon = round(lat_deg * 1000), round(lon_deg * 1000)
    table = DATAMAP_SHARDS[datamap_shard_id(lat, lon)]
    with engine.begin() as connection:
        connection.execute(
            sa.insert(table).values(
                grid=encode_datamap_grid(lat, lon), created=modified, modified=modified
            )
        )


@pytest.fixture
def engine(db_engine: Engine) -> Engine:
    with db_engine.begin() as connection:
        for shard in DATAMAP_SHARD_IDS:
            connection.execute(sa.delete(DATAMAP_SHARDS[shard]))
    return db_engine


def test_spec_example_three_fresh_grid_cells_give_18_points_and_six_tiles(
    engine: Engine, tmp_path: Path
) -> None:
    add_grid(engine, 51.5, 0.1, TODAY)  # London, east of Greenwich
    add_grid(engine, 40.7, -74.0, TODAY)  # New York
    add_grid(engine, 40.71, -74.01, TODAY - timedelta(days=10))
    add_grid(engine, -33.87, 151.2, TODAY - timedelta(days=400))  # faded out: no points
    seen: list[int] = []
    lat, lon, cells = read_points(engine, TODAY, page_size=2, progress=seen.append)
    assert (len(lat), cells, sum(seen)) == (18, 4, 4)
    written = render_tiles(lat, lon, tmp_path, max_zoom=2)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png"))
    assert files == ["0/0/0.png", "0/0/0@2x.png", "1/0/0.png", "1/1/0.png", "2/1/1.png",
                     "2/2/1.png"]  # fmt: skip
    assert written == 6
    _, _, big = decode_png((tmp_path / "0/0/0@2x.png").read_bytes())
    assert big.shape == (512, 512) and big.max() > 0


def test_sync_to_a_directory_uploads_changes_and_deletes_orphans(tmp_path: Path) -> None:
    local = tmp_path / "render"
    for name, body in (("0/0/0.png", b"a"), ("1/0/0.png", b"bb"), ("1/1/0.png", b"cc")):
        (local / name).parent.mkdir(parents=True, exist_ok=True)
        (local / name).write_bytes(body)
    store = asset_store(f"file://{tmp_path}/public")
    assert isinstance(store, DirectoryStore)
    store.put_bytes("tiles/data.json", b"{}", content_type="application/json")
    first = sync_directory(store, local, "tiles/", content_type="image/png", keep=["data.json"])
    assert (first.new, first.changed, first.unchanged, first.deleted) == (3, 0, 0, 0)
    (local / "1/0/0.png").write_bytes(b"zz")  # same size, other bytes
    (local / "1/1/0.png").unlink()
    second = sync_directory(store, local, "tiles/", content_type="image/png", keep=["data.json"])
    assert (second.new, second.changed, second.unchanged, second.deleted) == (0, 1, 1, 1)
    public = tmp_path / "public" / "tiles"
    assert sorted(p.relative_to(public).as_posix() for p in public.rglob("*") if p.is_file()) == [
        "0/0/0.png", "1/0/0.png", "data.json",
    ]  # fmt: skip
    assert (public / "1/0/0.png").read_bytes() == b"zz"


def test_sync_to_s3_compares_etags_and_sets_the_headers(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    local = tmp_path / "render"
    (local / "0/0").mkdir(parents=True)
    (local / "0/0/0.png").write_bytes(b"png-bytes")
    store = asset_store(f"s3://{s3_bucket.name}/assets", endpoint_url=s3_bucket.endpoint_url)
    assert store is not None
    args = {"content_type": "image/png", "cache_control": "max-age=3600, public"}
    first = sync_directory(store, local, "tiles/", **args)
    second = sync_directory(store, local, "tiles/", **args)
    assert (first.new, second.unchanged) == (1, 1)
    stored = s3_bucket.objects()["assets/tiles/0/0/0.png"]
    assert stored["Data"] == b"png-bytes"
    assert (stored["ContentType"], stored["CacheControl"]) == ("image/png", "max-age=3600, public")
    (local / "0/0/0.png").unlink()
    assert sync_directory(store, local, "tiles/", **args).deleted == 1
    assert s3_bucket.objects() == {}


def test_a_pool_of_processes_writes_the_same_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    lat = rng.normal(48.85, 0.3, 3000)
    lon = rng.normal(2.35, 0.5, 3000)
    one, two = tmp_path / "one", tmp_path / "two"
    seen: list[int] = []
    single = render_tiles(lat, lon, one, max_zoom=7)
    pooled = render_tiles(lat, lon, two, max_zoom=7, processes=2, progress=seen.append)
    assert single == pooled == sum(seen) > 8
    files = sorted(p.relative_to(one) for p in one.rglob("*.png"))
    assert files == sorted(p.relative_to(two) for p in two.rglob("*.png"))
    assert all((one / f).read_bytes() == (two / f).read_bytes() for f in files)


def test_stripes_cover_every_column_once() -> None:
    from ichnaea.pipeline.public.tiles import _stripes

    tasks = _stripes(5, 8)
    for zoom in range(6):
        columns = [x for z, a, b in tasks if z == zoom for x in range(a, b)]
        assert columns == list(range(1 << zoom))
    with pytest.raises(ValueError, match="processes"):
        render_tiles(np.zeros(1), np.zeros(1), Path("unused"), max_zoom=1, processes=0)
