"""Data exchange commands: ``ichnaea export cells|stations`` and ``ichnaea import cells``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from ichnaea.atomicfile import write_atomically
from ichnaea.cli.common import Progress, start_role, use_embedded_redis


def _moment(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO date/time", param_hint="--at") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.group("export")
def export_group() -> None:
    """Write the public cell export or a dump of the station tables."""


@export_group.command("cells")
@click.option(
    "--full", "kind", flag_value="full", default=True, help="Cells of the last 365 days [default]."
)
@click.option("--diff", "kind", flag_value="diff", help="Cells modified in the last whole hour.")
@click.option(
    "--at",
    help="Export as if run at this UTC time (ISO, e.g. 2026-11-30T10:00) [default: now]; "
    "backfills a missed hourly diff.",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    help="Write the file here (a directory gets the standard file name) instead of "
    "storing it in ASSET_BUCKET.",
)
def export_cells(kind: str, at: str | None, output: Path | None) -> None:
    """The MLS-format cell CSV (gzip): to ASSET_BUCKET as export/<name>, or to --output."""
    from ichnaea.objectstore import asset_store
    from ichnaea.pipeline.public.cellexport import (
        diff_window,
        full_window,
        publish,
        write_cells,
    )
    from ichnaea.repositories.session import create_engine

    settings = start_role("export")
    window = (full_window if kind == "full" else diff_window)(_moment(at))
    engine = create_engine(settings.db_readonly_url)
    progress = Progress(f"{window.kind} cell export", unit="cells")
    try:
        if output is not None:
            path = output / window.filename if output.is_dir() else output
            if path.exists():
                raise click.ClickException(f"{path} exists; not overwriting it")
            # Appears whole or not at all (a failed export leaves nothing).
            write_atomically(
                path,
                lambda out: write_cells(engine, out, window, progress=progress.advance),
                mode=0o644,
            )
            location = str(path)
        else:
            try:
                store = asset_store(settings.asset_bucket, endpoint_url=settings.s3_endpoint_url)
            except ValueError as exc:
                raise click.ClickException(str(exc)) from exc
            if store is None:
                raise click.ClickException("ASSET_BUCKET is not set: give --output FILE")
            location, _ = publish(engine, store, window, progress=progress.advance)
    finally:
        engine.dispose()
    click.echo(f"{progress.finish()} -> {location}")


@export_group.command("stations")
@click.option("--datatype", type=click.Choice(["blue", "cell", "wifi"]), required=True)
@click.option(
    "--filename",
    type=click.Path(path_type=Path),
    required=True,
    help="The .csv.gz to write (never overwritten).",
)
@click.option("--lat", type=click.FloatRange(-90, 90), help="With --lon and --radius: only...")
@click.option("--lon", type=click.FloatRange(-180, 180), help="...stations in the box around...")
@click.option(
    "--radius",
    type=click.FloatRange(min=0, min_open=True),
    help="...this point reaching this many metres each way.",
)
def export_stations(
    datatype: str, filename: Path, lat: float | None, lon: float | None, radius: float | None
) -> None:
    """Dump every station of one type, all columns, as a gzip CSV (the original location_dump)."""
    from ichnaea.pipeline.public.dump import area_bounds, dump_stations
    from ichnaea.repositories.session import create_engine

    given = [value is not None for value in (lat, lon, radius)]
    if any(given) and not all(given):
        raise click.UsageError("--lat, --lon and --radius go together")
    if filename.exists():
        raise click.ClickException(f"{filename} exists; not overwriting it")
    settings = start_role("export")
    bounds = None
    if lat is not None and lon is not None and radius is not None:
        bounds = area_bounds(lat, lon, radius)
    engine = create_engine(settings.db_readonly_url)
    progress = Progress(f"{datatype} dump", unit="stations")
    try:
        # Appears whole or not at all; private: station positions.
        write_atomically(
            filename,
            lambda out: dump_stations(
                engine, datatype, out, bounds=bounds, progress=progress.advance
            ),
            mode=0o600,
        )
    finally:
        engine.dispose()
    click.echo(f"{progress.finish()} -> {filename}")


@click.group("import")
def import_group() -> None:
    """Load data files into the station tables."""


@import_group.command("cells")
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def import_cells_command(paths: tuple[Path, ...]) -> None:
    """Import MLS-format cell CSV files (.csv or .csv.gz, e.g. an `export cells` file).

    A stored cell is overwritten only by a row with a newer `updated` time.
    The areas of changed cells and the region statistics are rebuilt at the
    end. An unknown radio or an invalid first row stops with the file and
    line at fault; other invalid rows are skipped and named in the log.
    """
    from ichnaea.broker.client import connect
    from ichnaea.geocode import Geocoder
    from ichnaea.metrics import make_metrics
    from ichnaea.pipeline.public.cellimport import InvalidCSV, import_cells
    from ichnaea.regions import RegionTable
    from ichnaea.repositories.session import create_engine

    settings = start_role("import")
    use_embedded_redis(settings)
    engine = create_engine(settings.db_readwrite_url)
    client = connect(settings)
    geocoder = Geocoder.load(RegionTable.load())
    metrics = make_metrics(settings)
    try:
        for path in paths:
            progress = Progress(str(path), unit="rows", total=path.stat().st_size)
            try:
                summary = import_cells(
                    engine,
                    client,
                    path,
                    geocoder=geocoder,
                    metrics=metrics,
                    progress=progress.advance,
                )
            except InvalidCSV as exc:
                progress.finish()
                raise click.ClickException(str(exc)) from exc
            click.echo(progress.finish())
            for line in summary.lines():
                click.echo(f"  {line}")
    finally:
        engine.dispose()
        client.close()
