"""The public cell export (spec pipeline.md section 14.1)."""

from __future__ import annotations

import gzip
import io
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ichnaea.codecs import encode_cellid
from ichnaea.enums import Radio
from ichnaea.models.cell import CELL_TABLES
from ichnaea.objectstore import DirectoryStore, S3Store, asset_store
from ichnaea.pipeline.public.cellexport import (
    CSV_HEADER,
    diff_window,
    full_window,
    prune_local,
    publish,
    write_cells,
)
from tests.fixtures_s3 import S3Bucket

NOW = datetime(2026, 11, 30, 10, 42, 17)
HEADER = ",".join(CSV_HEADER)


@pytest.fixture
def engine(db_engine: Engine) -> Engine:
    with db_engine.begin() as connection:
        for table in CELL_TABLES.values():
            connection.execute(sa.delete(table))
    return db_engine


def add_cell(engine: Engine, radio: Radio, cid: int, **values: Any) -> None:
    row: dict[str, Any] = {
        "radio": radio.value, "mcc": 202, "mnc": 1, "lac": 2120, "cid": cid,
        "lat": 38.8574351, "lon": 23.4123167, "radius": 1500, "samples": 6,
        "created": datetime(2019, 9, 11, 16, 49, 24), "modified": NOW - timedelta(minutes=30),
    }  # fmt: skip
    row.update(values)
    row["cellid"] = encode_cellid(radio.value, row["mcc"], row["mnc"], row["lac"], cid)
    with engine.begin() as connection:
        connection.execute(sa.insert(CELL_TABLES[radio]), [row])


def export_lines(engine: Engine, window: Any, **kwargs: Any) -> tuple[bytes, list[str]]:
    out = io.BytesIO()
    write_cells(engine, out, window, **kwargs)
    raw = gzip.decompress(out.getvalue())
    return raw, raw.decode().split("\r\n")[:-1]


def test_full_export_spec_example_wcdma_is_umts_and_old_or_unplaced_cells_are_left_out(
    engine: Engine,
) -> None:
    for cid in range(1, 11):
        add_cell(engine, Radio.wcdma, cid)
    add_cell(engine, Radio.wcdma, 11, lat=None, lon=None)
    add_cell(engine, Radio.wcdma, 12, modified=NOW - timedelta(days=367))
    _, lines = export_lines(engine, full_window(NOW))
    assert lines[0] == HEADER
    assert [line.split(",")[4] for line in lines[1:]] == [str(cid) for cid in range(1, 11)]
    assert {line.split(",")[0] for line in lines[1:]} == {"UMTS"}


def test_row_format_seven_decimals_crlf_changeable_and_empty_average_signal(
    engine: Engine,
) -> None:
    add_cell(engine, Radio.wcdma, 12842, psc=17, lat=51.5, lon=-0.1)
    add_cell(engine, Radio.gsm, 20669, mcc=208, mnc=10, lac=30014, psc=None,
             radius=None, samples=None, created=None, lat=48.85, lon=-1e-9)  # fmt: skip
    raw, lines = export_lines(engine, full_window(NOW))
    assert raw.count(b"\r\n") == 3 and raw.count(b"\n") == 3
    modified = 1796033537  # NOW - 30 min, 2026-11-30T10:12:17Z
    assert lines[1:] == [
        f"GSM,208,10,30014,20669,,0.0000000,48.8500000,0,0,1,,{modified},",
        f"UMTS,202,1,2120,12842,17,-0.1000000,51.5000000,1500,6,1,1568220564,{modified},",
    ]


def test_tables_in_order_gsm_wcdma_lte_nr_and_paging_changes_nothing(engine: Engine) -> None:
    add_cell(engine, Radio.lte, 5)
    add_cell(engine, Radio.nr, 2**35, lac=70_000)
    for cid in (9, 3, 7):
        add_cell(engine, Radio.gsm, cid)
    add_cell(engine, Radio.wcdma, 4)
    _, whole = export_lines(engine, full_window(NOW))
    _, paged = export_lines(engine, full_window(NOW), page_size=2)
    assert paged == whole
    assert [(line.split(",")[0], line.split(",")[4]) for line in whole[1:]] == [
        ("GSM", "3"), ("GSM", "7"), ("GSM", "9"), ("UMTS", "4"), ("LTE", "5"), ("NR", str(2**35)),
    ]  # fmt: skip


def test_diff_export_holds_the_last_whole_hour(engine: Engine) -> None:
    add_cell(engine, Radio.gsm, 1, modified=datetime(2026, 11, 30, 8, 59, 59))
    add_cell(engine, Radio.gsm, 2, modified=datetime(2026, 11, 30, 9, 0, 0))
    add_cell(engine, Radio.gsm, 3, modified=datetime(2026, 11, 30, 9, 59, 59))
    add_cell(engine, Radio.gsm, 4, modified=datetime(2026, 11, 30, 10, 0, 0))
    window = diff_window(NOW)
    assert window.filename == "MLS-diff-cell-export-2026-11-30T100000.csv.gz"
    _, lines = export_lines(engine, window)
    assert [line.split(",")[4] for line in lines[1:]] == ["2", "3"]


def test_full_export_name_and_365_day_boundary(engine: Engine) -> None:
    window = full_window(NOW)
    assert window.filename == "MLS-full-cell-export-2026-11-30T000000.csv.gz"
    add_cell(engine, Radio.lte, 1, modified=datetime(2025, 11, 30, 0, 0, 0))
    add_cell(engine, Radio.lte, 2, modified=datetime(2025, 11, 29, 23, 59, 59))
    _, lines = export_lines(engine, window)
    assert [line.split(",")[4] for line in lines[1:]] == ["1"]


def test_an_empty_table_set_gives_just_the_header(engine: Engine) -> None:
    _, lines = export_lines(engine, full_window(NOW))
    assert lines == [HEADER]


def test_publish_to_a_local_directory_and_report_progress(engine: Engine, tmp_path: Path) -> None:
    for cid in range(1, 6):
        add_cell(engine, Radio.gsm, cid)
    seen: list[int] = []
    store = asset_store(f"file://{tmp_path}/assets")
    assert isinstance(store, DirectoryStore)
    location, count = publish(engine, store, full_window(NOW), page_size=2, progress=seen.append)
    target = tmp_path / "assets" / "export" / "MLS-full-cell-export-2026-11-30T000000.csv.gz"
    assert (location, count, seen) == (str(target), 5, [2, 2, 1])
    assert gzip.decompress(target.read_bytes()).decode().count("\r\n") == 6
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temporary left
    assert target.stat().st_mode & 0o777 == 0o644  # public, unlike the raw report archive


def test_a_local_directory_keeps_seven_days_of_exports(tmp_path: Path) -> None:
    # A bucket expires its exports by lifecycle policy; a local directory
    # (the embedded default's) has none, so the export job prunes it.
    store = asset_store(f"file://{tmp_path}/assets")
    assert isinstance(store, DirectoryStore)
    names = [
        "MLS-full-cell-export-2026-11-22T000000.csv.gz",  # 8 days before NOW: deleted
        "MLS-diff-cell-export-2026-11-22T230000.csv.gz",  # deleted
        "MLS-full-cell-export-2026-11-23T000000.csv.gz",  # 7 days: kept
        "MLS-diff-cell-export-2026-11-30T100000.csv.gz",  # kept
        "notes-2020-01-01.txt",  # not an export: kept
    ]
    for name in names:
        store.put_bytes("export/" + name, b"x", content_type="application/gzip")
    assert prune_local(store, NOW) == 2
    assert sorted(store.sizes("export/")) == sorted("export/" + n for n in names[2:])
    assert prune_local(store, NOW) == 0


def test_a_bucket_is_left_to_its_lifecycle_policy(s3_bucket: S3Bucket) -> None:
    store = asset_store(s3_bucket.name, endpoint_url=s3_bucket.endpoint_url)
    assert store is not None
    old = "export/MLS-full-cell-export-2020-01-01T000000.csv.gz"
    store.put_bytes(old, b"x", content_type="application/gzip")
    assert prune_local(store, NOW) == 0
    assert old in s3_bucket.objects()


def test_publish_to_s3_with_boto3(engine: Engine, s3_bucket: S3Bucket) -> None:
    add_cell(engine, Radio.gsm, 1, modified=datetime(2026, 11, 30, 9, 30))
    store = asset_store(s3_bucket.name, endpoint_url=s3_bucket.endpoint_url)
    assert isinstance(store, S3Store)
    location, count = publish(engine, store, diff_window(NOW))
    key = "export/MLS-diff-cell-export-2026-11-30T100000.csv.gz"
    assert (location, count) == (f"s3://{s3_bucket.name}/{key}", 1)
    body = gzip.decompress(s3_bucket.objects()[key]["Data"]).decode()
    assert body.startswith(HEADER + "\r\nGSM,202,1,2120,1,")


def test_asset_bucket_forms_and_errors(tmp_path: Path) -> None:
    assert asset_store("") is None
    prefixed = asset_store("s3://bucket/public/")
    assert isinstance(prefixed, S3Store)
    assert (prefixed.bucket, prefixed.prefix) == ("bucket", "public/")
    for bad in ("bucket/with/slash", "http://example.com/x", "file://relative/dir"):
        with pytest.raises(ValueError, match="ASSET_BUCKET"):
            asset_store(bad)
