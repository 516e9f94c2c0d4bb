"""Import of cell CSV files (spec pipeline.md sections 14.2 and 23 item 9)."""

from __future__ import annotations

import gzip
import io
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ichnaea.codecs import encode_areaid, encode_cellid
from ichnaea.enums import Radio
from ichnaea.geocode import Geocoder
from ichnaea.models.cell import CELL_TABLES
from ichnaea.pipeline.public.cellexport import CSV_HEADER, full_window, write_cells
from ichnaea.pipeline.public.cellimport import InvalidCSV, import_cells
from ichnaea.regions import RegionTable
from tests._support import RecordingMetrics
from tests.fixtures_pipeline import Pipeline

HEADER = ",".join(CSV_HEADER)
CREATED, UPDATED = 1568220564, 1570120316  # 2019-09-11 16:49:24Z, 2019-10-03 16:31:56Z
SPEC_ROWS = [
    f"UMTS,202,1,2120,12842,,23.4123167,38.8574351,0,6,1,{CREATED},{UPDATED},",
    f"GSM,208,10,30014,20669,,2.3522219,48.8566140,0,6,1,{CREATED},{UPDATED},",
    f"LTE,202,1,2120,12842,,23.4123167,38.8574351,0,6,1,{CREATED},{UPDATED},",
]


@pytest.fixture(scope="module")
def geocoder() -> Geocoder:
    return Geocoder.load(RegionTable.load())


def write_csv(path: Path, lines: list[str], *, compress: bool = True) -> Path:
    body = "".join(line + "\r\n" for line in lines).encode()
    path.write_bytes(gzip.compress(body) if compress else body)
    return path


def run_import(pipeline: Pipeline, path: Path, geocoder: Geocoder, **kwargs: Any) -> Any:
    return import_cells(
        pipeline.engine, pipeline.redis, path, geocoder=geocoder, metrics=RecordingMetrics(),
        now=datetime(2026, 11, 30, 12, 0), **kwargs,
    )  # fmt: skip


def cells(pipeline: Pipeline, radio: Radio) -> list[dict[str, Any]]:
    return pipeline.rows(CELL_TABLES[radio].__tablename__)


def test_spec_example_three_rows_one_cell_per_table_with_areas_and_region_stats(
    pipeline: Pipeline, geocoder: Geocoder, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "cells.csv.gz", [HEADER, *SPEC_ROWS])
    summary = run_import(pipeline, path, geocoder)
    assert (summary.new, summary.updated, summary.found) == (
        {"UMTS": 1, "GSM": 1, "LTE": 1},
        {},
        {},
    )
    (wcdma,) = cells(pipeline, Radio.wcdma)
    assert wcdma["cellid"] == encode_cellid(Radio.wcdma, 202, 1, 2120, 12842)
    assert (wcdma["region"], wcdma["radius"], wcdma["samples"], wcdma["psc"]) == ("GR", 0, 6, 0)
    assert (wcdma["lat"], wcdma["lon"]) == (38.8574351, 23.4123167)
    assert (wcdma["max_lat"], wcdma["min_lon"]) == (38.8574351, 23.4123167)
    assert wcdma["created"] == datetime(2019, 9, 11, 16, 49, 24)
    assert wcdma["modified"] == datetime(2019, 10, 3, 16, 31, 56)
    assert (wcdma["source"], wcdma["weight"], wcdma["last_seen"]) == (None, None, None)
    assert [row["region"] for row in cells(pipeline, Radio.gsm)] == ["FR"]
    assert len(cells(pipeline, Radio.lte)) == 1
    areas = {row["areaid"] for row in pipeline.rows("cell_area")}
    assert areas == {
        encode_areaid(Radio.gsm, 208, 10, 30014),
        encode_areaid(Radio.wcdma, 202, 1, 2120),
        encode_areaid(Radio.lte, 202, 1, 2120),
    }
    stats = {
        row["region"]: (row["gsm"], row["wcdma"], row["lte"], row["blue"], row["wifi"])
        for row in pipeline.rows("region_stat")
    }
    assert stats == {"FR": (1, 0, 0, 0, 0), "GR": (0, 1, 1, 0, 0)}


def test_spec_23_9_export_then_import_into_an_empty_db_reproduces_the_cells(
    pipeline: Pipeline, geocoder: Geocoder, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "a.csv.gz", [HEADER, *SPEC_ROWS])
    run_import(pipeline, path, geocoder)
    with pipeline.engine.begin() as conn:  # a psc the export writes out
        conn.execute(
            sa.update(CELL_TABLES[Radio.lte]).values(psc=301, modified=datetime(2026, 11, 30))
        )
    out = io.BytesIO()
    write_cells(pipeline.engine, out, full_window(datetime(2020, 6, 1)))  # 2019 rows in
    text = gzip.decompress(out.getvalue()).decode()
    lines = text.split("\r\n")
    assert lines[0] == HEADER and lines[-1] == ""
    assert "UMTS,202,1,2120,12842,0,23.4123167,38.8574351,0,6,1,1568220564,1570120316," in lines
    assert all(line.split(",")[10:] == ["1", *line.split(",")[11:13], ""] for line in lines[1:-1])
    before = {radio: cells(pipeline, radio) for radio in (Radio.gsm, Radio.wcdma, Radio.lte)}
    exported = tmp_path / "export.csv.gz"
    exported.write_bytes(out.getvalue())
    pipeline.wipe()
    run_import(pipeline, exported, geocoder)
    after = {radio: cells(pipeline, radio) for radio in (Radio.gsm, Radio.wcdma, Radio.lte)}
    assert after == before  # gsm's empty unit came back as psc 0, lte's 301 as 301


def test_newer_rows_update_older_ones_are_found_and_the_region_follows_the_position_fixed(
    pipeline: Pipeline, geocoder: Geocoder, tmp_path: Path
) -> None:
    run_import(pipeline, write_csv(tmp_path / "a.csv", [HEADER, SPEC_ROWS[0]]), geocoder)
    moved = f"UMTS,202,1,2120,12842,44,2.3522219,48.8566140,300000,9,1,{CREATED},{UPDATED + 1},"
    stale = f"UMTS,202,1,2120,12842,55,0,0,10,1,1,{CREATED},{UPDATED},"
    summary = run_import(pipeline, write_csv(tmp_path / "b.csv", [HEADER, moved]), geocoder)
    assert summary.updated == {"UMTS": 1}
    summary = run_import(pipeline, write_csv(tmp_path / "c.csv", [HEADER, stale]), geocoder)
    assert summary.found == {"UMTS": 1}
    (row,) = cells(pipeline, Radio.wcdma)
    # Moved out of Greece (mcc 202): no region any more; the original kept "GR".
    assert (row["psc"], row["radius"], row["samples"], row["region"]) == (44, 100_000, 9, None)
    assert (row["lat"], row["lon"]) == (48.856614, 2.3522219)
    # The bounding box is left as it was (only the listed columns change).
    assert (row["max_lat"], row["max_lon"]) == (38.8574351, 23.4123167)


def test_within_one_file_the_newest_row_of_a_cell_wins(
    pipeline: Pipeline, geocoder: Geocoder, tmp_path: Path
) -> None:
    newer = f"GSM,208,10,30014,20669,,2.35,48.85,0,7,1,,{UPDATED + 60},"
    older = f"GSM,208,10,30014,20669,,2.36,48.86,0,8,1,,{UPDATED},"
    summary = run_import(
        pipeline, write_csv(tmp_path / "a.csv.gz", [HEADER, newer, older]), geocoder
    )
    assert summary.new == {"GSM": 1}
    (row,) = cells(pipeline, Radio.gsm)
    assert (row["samples"], row["created"]) == (7, None)


def test_no_header_is_read_as_data_and_an_empty_radio_skips_the_row(
    pipeline: Pipeline, geocoder: Geocoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = [SPEC_ROWS[1], "," + SPEC_ROWS[0].split(",", 1)[1]]
    summary = run_import(
        pipeline, write_csv(tmp_path / "plain.csv", lines, compress=False), geocoder
    )
    assert (summary.new, summary.skipped) == ({"GSM": 1}, 1)
    assert "no header line" in caplog.text
    assert "plain.csv:2: no radio" in caplog.text


def test_an_unknown_radio_stops_the_import_naming_the_line_and_keeps_earlier_rows(
    pipeline: Pipeline, geocoder: Geocoder, tmp_path: Path
) -> None:
    bad = "CDMA" + SPEC_ROWS[0][4:]
    path = write_csv(tmp_path / "cells.csv.gz", [HEADER, SPEC_ROWS[1], bad, SPEC_ROWS[0]])
    with pytest.raises(InvalidCSV, match=r"cells\.csv\.gz:3: radio 'CDMA'"):
        run_import(pipeline, path, geocoder)
    assert len(cells(pipeline, Radio.gsm)) == 1
    assert cells(pipeline, Radio.wcdma) == []


def test_an_invalid_first_row_stops_later_invalid_rows_are_skipped(
    pipeline: Pipeline, geocoder: Geocoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad_lat = SPEC_ROWS[0].replace("38.8574351", "91.5")
    with pytest.raises(InvalidCSV, match=r"first\.csv:2: lat: 91\.5 is outside"):
        run_import(pipeline, write_csv(tmp_path / "first.csv", [HEADER, bad_lat]), geocoder)
    bad_mcc = SPEC_ROWS[1].replace("GSM,208,", "GSM,1000,")
    bad_cid = SPEC_ROWS[2].replace("12842", "x12")
    path = write_csv(tmp_path / "later.csv", [HEADER, SPEC_ROWS[0], bad_mcc, bad_cid])
    summary = run_import(pipeline, path, geocoder)
    assert (summary.new, summary.invalid) == ({"UMTS": 1}, 2)
    assert "later.csv:3: mcc/net/area/cell" in caplog.text
    assert "later.csv:4: cell: 'x12' is not a number" in caplog.text


def test_chunks_commit_separately_and_report_progress(
    pipeline: Pipeline, geocoder: Geocoder, tmp_path: Path
) -> None:
    rows = [f"LTE,262,2,{100 + n % 3},{n},,13.4,52.5,100,1,1,,{UPDATED},"
            for n in range(1, 8)]  # fmt: skip
    path = write_csv(tmp_path / "lte.csv.gz", [HEADER, *rows])
    seen: list[tuple[int, int]] = []
    summary = run_import(
        pipeline, path, geocoder, chunk_rows=3, progress=lambda n, pos: seen.append((n, pos))
    )
    assert [n for n, _ in seen] == [3, 3, 1]
    assert seen[-1][1] == path.stat().st_size
    assert (summary.new, summary.areas) == ({"LTE": 7}, 3)
    assert len(cells(pipeline, Radio.lte)) == 7


def test_a_file_that_is_not_gzip_csv_is_named(
    pipeline: Pipeline, geocoder: Geocoder, tmp_path: Path
) -> None:
    path = tmp_path / "broken.csv.gz"
    path.write_bytes(gzip.compress(HEADER.encode() + b"\r\n")[:-12])
    with pytest.raises(InvalidCSV, match=r"broken\.csv\.gz: unreadable"):
        run_import(pipeline, path, geocoder)


def test_a_file_of_bad_rows_names_the_first_twenty_and_counts_the_rest(
    pipeline: Pipeline, geocoder: Geocoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = [SPEC_ROWS[0].replace("38.8574351", "95") for _ in range(25)]
    path = write_csv(tmp_path / "noisy.csv", [HEADER, SPEC_ROWS[1], *bad])
    summary = run_import(pipeline, path, geocoder)
    assert (summary.new, summary.invalid) == ({"GSM": 1}, 25)
    named = [r for r in caplog.records if "row skipped" in r.getMessage()]
    assert [r.getMessage().split(":")[1] for r in named] == [str(n) for n in range(3, 23)]
    assert "further skipped rows are only counted" in caplog.text
