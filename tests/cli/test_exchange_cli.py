"""``ichnaea export cells|stations`` and ``ichnaea import cells`` on real storage."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from ichnaea.__main__ import cli
from ichnaea.enums import Radio
from ichnaea.models.cell import CELL_TABLES
from ichnaea.worker.jobs import Resources, periodic_job, run_job
from tests.cli.test_pipeline_cli import cli_env
from tests.fixtures_pipeline import Pipeline

HEADER = (
    "radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal"
)
ROWS = [
    "UMTS,202,1,2120,12842,,23.4123167,38.8574351,0,6,1,1568220564,1570120316,",
    "GSM,208,10,30014,20669,,2.3522219,48.8566140,0,6,1,1568220564,1570120316,",
]


def csv_file(path: Path, lines: list[str]) -> Path:
    path.write_bytes(gzip.compress("".join(line + "\r\n" for line in lines).encode()))
    return path


def test_import_then_export_cells_to_a_file_and_a_directory(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    env = cli_env(pipeline)
    source = csv_file(tmp_path / "in.csv.gz", [HEADER, *ROWS])
    result = CliRunner().invoke(cli, ["import", "cells", str(source)], env=env)
    assert result.exit_code == 0, result.output
    assert "UMTS: 1 new, 0 updated, 0 found" in result.output
    assert "GSM: 1 new, 0 updated, 0 found" in result.output
    assert len(pipeline.rows(CELL_TABLES[Radio.gsm].__tablename__)) == 1

    out = tmp_path / "out.csv.gz"
    args = ["export", "cells", "--at", "2020-01-01T05:30", "--output", str(out)]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    assert "full cell export: 2 cells" in result.output
    lines = gzip.decompress(out.read_bytes()).decode().split("\r\n")
    assert lines[0] == HEADER
    assert [line.split(",")[0] for line in lines[1:3]] == ["GSM", "UMTS"]

    again = CliRunner().invoke(cli, args, env=env)
    assert again.exit_code == 1 and "exists; not overwriting it" in again.output

    args = ["export", "cells", "--diff", "--at", "2019-10-03T17:10", "--output", str(tmp_path)]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    diff = tmp_path / "MLS-diff-cell-export-2019-10-03T170000.csv.gz"
    assert gzip.decompress(diff.read_bytes()).decode().count("\r\n") == 3


def test_import_of_a_bad_file_names_file_and_line(pipeline: Pipeline, tmp_path: Path) -> None:
    source = csv_file(tmp_path / "bad.csv.gz", [HEADER, ROWS[0], "CDMA" + ROWS[1][3:]])
    result = CliRunner().invoke(cli, ["import", "cells", str(source)], env=cli_env(pipeline))
    assert result.exit_code == 1
    assert "bad.csv.gz:3: radio 'CDMA'" in result.output


def test_export_cells_without_asset_bucket_or_output_is_an_error(pipeline: Pipeline) -> None:
    result = CliRunner().invoke(cli, ["export", "cells"], env=cli_env(pipeline))
    assert result.exit_code == 1
    assert "ASSET_BUCKET is not set" in result.output


def test_export_cells_to_the_asset_bucket(pipeline: Pipeline, tmp_path: Path) -> None:
    env = {**cli_env(pipeline), "ASSET_BUCKET": f"file://{tmp_path}/assets"}
    CliRunner().invoke(cli, ["import", "cells", str(csv_file(tmp_path / "a.gz", ROWS))], env=env)
    result = CliRunner().invoke(cli, ["export", "cells", "--at", "2020-01-01"], env=env)
    assert result.exit_code == 0, result.output
    target = tmp_path / "assets" / "export" / "MLS-full-cell-export-2020-01-01T000000.csv.gz"
    assert str(target) in result.output
    assert gzip.decompress(target.read_bytes()).decode().count("\r\n") == 3


def test_the_scheduled_diff_export_job_publishes_the_last_hour(
    pipeline: Pipeline, tmp_path: Path, make_settings
) -> None:  # type: ignore[no-untyped-def]
    pipeline.resources.settings = make_settings(
        **{**cli_env(pipeline), "ASSET_BUCKET": f"file://{tmp_path}"}
    )
    job = periodic_job("cell_export_diff")
    assert job is not None
    res: Resources = pipeline.resources
    before = datetime.now(UTC)
    run_job(job, res)
    after = datetime.now(UTC)
    names = {f"MLS-diff-cell-export-{t:%Y-%m-%dT%H}0000.csv.gz" for t in (before, after)}
    (target,) = [path for path in (tmp_path / "export").iterdir() if path.name in names]
    # No cell changed in the last hour: the file holds just the header.
    assert gzip.decompress(target.read_bytes()).decode() == HEADER + "\r\n"


def test_export_stations_dumps_cells_and_refuses_half_an_area(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    env = cli_env(pipeline)
    CliRunner().invoke(cli, ["import", "cells", str(csv_file(tmp_path / "a.gz", ROWS))], env=env)
    out = tmp_path / "cells.csv.gz"
    args = ["export", "stations", "--datatype", "cell", "--filename", str(out)]
    result = CliRunner().invoke(
        cli, [*args, "--lat", "38.85", "--lon", "23.41", "--radius", "10000"], env=env
    )
    assert result.exit_code == 0, result.output
    lines = gzip.decompress(out.read_bytes()).decode().splitlines()
    assert lines[0].startswith("radio,mcc,mnc,lac,cid,psc,lat,lon,")
    assert [line.split(",")[:5] for line in lines[1:]] == [["WCDMA", "202", "1", "2120", "12842"]]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 1 and "exists; not overwriting it" in result.output
    out.unlink()
    result = CliRunner().invoke(cli, [*args, "--lat", "1"], env=env)
    assert result.exit_code == 2 and "--lat, --lon and --radius go together" in result.output


def add_datamap(pipeline: Pipeline, lat_deg: float, lon_deg: float) -> None:
    from ichnaea.codecs import datamap_shard_id, encode_datamap_grid
    from ichnaea.models.stats import DATAMAP_SHARDS

    lat, lon = round(lat_deg * 1000), round(lon_deg * 1000)
    today = datetime.now(UTC).date()
    with pipeline.engine.begin() as conn:
        conn.execute(
            DATAMAP_SHARDS[datamap_shard_id(lat, lon)].__table__.insert(),
            [{"grid": encode_datamap_grid(lat, lon), "created": today, "modified": today}],
        )


def test_map_renders_into_a_directory_and_publishes_to_the_asset_bucket(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    add_datamap(pipeline, 51.5, 0.1)
    add_datamap(pipeline, 40.7, -74.0)
    env = cli_env(pipeline)
    kept = tmp_path / "kept"
    args = ["map", "--max-zoom", "3", "--output", str(kept), "--no-upload", "--processes", "2"]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    assert "2 grid cells, 12 points, 9 tiles (zoom 0-3)" in result.output
    assert (kept / "3" / "4" / "2.png").exists()  # London at zoom 3
    assert (kept / "3" / "3" / "2.png").exists()  # its dot reaching over the x=4 edge
    again = CliRunner().invoke(cli, args, env=env)
    assert again.exit_code == 1 and "is not empty" in again.output

    public = {**env, "ASSET_BUCKET": f"file://{tmp_path}/public"}
    result = CliRunner().invoke(cli, ["map", "--max-zoom", "3"], env=public)
    assert result.exit_code == 0, result.output
    assert "9 new, 0 changed, 0 unchanged, 0 deleted" in result.output
    tiles = tmp_path / "public" / "tiles"
    assert (tiles / "3" / "4" / "2.png").read_bytes() == (kept / "3" / "4" / "2.png").read_bytes()
    record = json.loads((tiles / "data.json").read_text())
    assert (record["tiles"], record["points"], record["new"]) == (9, 12, 9)
    result = CliRunner().invoke(cli, ["map", "--max-zoom", "2"], env=public)
    assert "0 new, 0 changed, 6 unchanged, 3 deleted" in result.output


def test_a_failed_export_leaves_no_partial_file(pipeline: Pipeline, tmp_path: Path) -> None:
    env = {**cli_env(pipeline), "DB_READONLY_URI": "mysql://root@127.0.0.1:1/nothing"}
    out = tmp_path / "cells.csv.gz"
    result = CliRunner().invoke(cli, ["export", "cells", "--output", str(out)], env=env)
    assert result.exit_code != 0
    assert not out.exists()
