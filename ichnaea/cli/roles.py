"""Role commands: serve, web, worker, scheduler, map, process, shell."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import click

from ichnaea.cli.common import log_embedded_defaults, start_embedded_redis, start_role
from ichnaea.config import WEB_STARTED_NS, Settings
from ichnaea.cpus import usable_cpu_count
from ichnaea.worker.shutdown import ShutdownFlag

log = logging.getLogger("ichnaea")


def _exit_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


@click.command()
@click.option("--host", help="Interface to listen on [default: HOST or 127.0.0.1].")
@click.option("--port", type=int, help="Port to listen on [default: PORT or 8000].")
@click.option("--processes", type=int, help="Web processes [default: WEB_PROCESSES or cores].")
def web(host: str | None, port: int | None, processes: int | None) -> None:
    """Run the HTTP API."""
    from ichnaea.web.serve import serve

    settings = start_role("web")
    log_embedded_defaults(settings)
    # Every process of this start builds or maps one fresh station index.
    os.environ[WEB_STARTED_NS] = str(time.time_ns())
    embedded = start_embedded_redis(settings)
    if embedded is not None:
        # A single uvicorn process re-raises the SIGTERM it handled once it
        # has shut down; the default action would end this process before
        # the finally below stops the embedded Redis it started.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        serve(
            "ichnaea.web.asgi:create_app_from_env",
            host=host or settings.host,
            port=settings.port if port is None else port,
            processes=processes or settings.web_processes,
            log_config=None,
            access_log=False,
            server_header=False,
            # One source of truth for the client address: ichnaea.api.context
            # reads X-Forwarded-For against FORWARDED_ALLOW_IPS (Settings). With
            # uvicorn's own handling on, it would also rewrite the peer from the
            # same variable, with its own default (127.0.0.1 only) and parser,
            # and the app would behave differently under another ASGI server.
            proxy_headers=False,
            timeout_graceful_shutdown=20,
            timeout_keep_alive=settings.keep_alive_s,
        )
    finally:
        if embedded is not None:
            embedded.stop()


@click.command()
@click.option("--processes", type=int, help="Pool size [default: WORKER_PROCESSES or cores].")
def worker(processes: int | None) -> None:
    """Run the data pipeline worker pool."""
    from ichnaea.worker.pool import run_pool

    settings = start_role("worker")
    embedded = start_embedded_redis(settings)
    try:
        run_pool(settings, processes or settings.worker_processes)
    finally:
        if embedded is not None:
            embedded.stop()


@click.command()
def scheduler() -> None:
    """Run the periodic-job scheduler (one per deployment; extras wait on a lock)."""
    from ichnaea.broker.client import connect
    from ichnaea.worker.scheduler import run_scheduler

    settings = start_role("scheduler")
    embedded = start_embedded_redis(settings)
    client = connect(settings, max_connections=2)
    try:
        run_scheduler(settings, client, ShutdownFlag().install())
    finally:
        client.close()
        if embedded is not None:
            embedded.stop()


@click.command("map")
@click.option("--max-zoom", type=click.IntRange(0, 20), default=11, show_default=True)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Render into this new or empty directory and keep it [default: a temporary one].",
)
@click.option(
    "--upload/--no-upload",
    default=True,
    help="Mirror the tiles to tiles/ in ASSET_BUCKET [default: on].",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    help="Rendering processes [default: the usable CPU cores].",
)
def map_command(max_zoom: int, output: Path | None, upload: bool, processes: int | None) -> None:
    """Render the coverage map tiles from the datamap and publish them.

    Tiles of zooms 0..--max-zoom go to tiles/<z>/<x>/<y>.png in ASSET_BUCKET:
    new and changed ones are uploaded, unchanged ones left alone, tiles no
    longer drawn deleted, and tiles/data.json records the run. Run it once a
    day (cron, or a scheduled container: it exits when done).
    """
    from ichnaea.cli.tiles import publish_map

    settings = start_role("map")
    if upload and not settings.asset_bucket:
        if output is None:
            raise click.ClickException("ASSET_BUCKET is not set: give --output DIR (or set it)")
        log.info("ASSET_BUCKET is not set: the tiles stay in %s", output)
        upload = False
    if output is not None and output.exists() and any(output.iterdir()):
        raise click.ClickException(f"{output} is not empty; give a new or empty directory")
    workers = processes or usable_cpu_count()
    click.echo(
        publish_map(settings, max_zoom=max_zoom, output=output, upload=upload, processes=workers)
    )


@click.command()
@click.option("--quiet", is_flag=True, help="No progress lines.")
def process(quiet: bool) -> None:
    """Run every pipeline stage until all queues are empty, then exit.

    Batches left by consumers that died are reclaimed first (once their
    lease ran out), half-full export batches are flushed, and the periodic
    jobs (stat counters, region stats, clean-ups) run once at the end.
    """
    from ichnaea.broker.client import connect
    from ichnaea.metrics import make_metrics
    from ichnaea.repositories.session import create_engine
    from ichnaea.worker.jobs import (
        Resources,
        claimed_elsewhere,
        rename_legacy_keys,
        run_periodic_jobs,
        run_queue_jobs,
    )

    settings = start_role("process")
    embedded = start_embedded_redis(settings)
    resources = Resources(
        settings,
        create_engine(settings.db_readwrite_url),
        connect(settings),
        metrics=make_metrics(settings),
        drain=True,
    )
    started = last_report = time.monotonic()
    total = 0

    def drain() -> None:
        nonlocal total, last_report
        while handled := run_queue_jobs(resources):
            total += handled
            if not quiet and time.monotonic() - last_report >= 5:
                last_report = time.monotonic()
                click.echo(
                    f"... {total} items processed in {last_report - started:.0f} s", err=True
                )

    try:
        rename_legacy_keys(resources)
        run_periodic_jobs(resources)  # reclaims orphaned batches first
        drain()
        # Batches a dead worker left behind come back once their lease runs out.
        deadline = time.monotonic() + 2 * settings.queue_lease_s + 5
        while (held := claimed_elsewhere(resources)) and time.monotonic() < deadline:
            if not quiet:
                click.echo(f"... waiting for {held} items claimed by other workers", err=True)
            time.sleep(1)
            run_periodic_jobs(resources)
            drain()
        run_periodic_jobs(resources)  # stat counters of what was just processed
        drain()
        click.echo(f"queues empty; {total} items processed in {time.monotonic() - started:.1f} s")
        if held := claimed_elsewhere(resources):
            click.echo(
                f"{held} items are still claimed by other workers (alive, or their "
                "lease has not run out); run process again later",
                err=True,
            )
    finally:
        resources.db.dispose()
        resources.redis.close()
        if embedded is not None:
            embedded.stop()


@click.command()
def shell() -> None:
    """Open a Python shell with `settings`, `db` (read-write engine) and `redis`."""
    import code

    from ichnaea.broker.client import connect
    from ichnaea.repositories.session import create_engine

    settings = start_role("shell")
    namespace = {
        "settings": settings,
        "db": create_engine(settings.db_readwrite_url),
        "redis": connect(settings),
    }
    code.interact(banner="ichnaea shell: settings, db, redis", local=namespace)


ROLES = ("web", "worker", "scheduler")


def _ensure_archive(settings: Settings) -> None:
    """The embedded setup archives every report under ``$ICHNAEA_DATA_DIR/archive``."""
    from sqlalchemy.orm import Session

    from ichnaea.repositories.export_configs import ensure_local_archive
    from ichnaea.repositories.session import create_engine

    engine = create_engine(settings.db_readwrite_url, pooled=False)
    try:
        with Session(engine) as session:
            if ensure_local_archive(session, settings.data_dir / "archive"):
                log.info("reports are archived under %s", settings.data_dir / "archive")
    finally:
        engine.dispose()


@click.command()
def serve() -> None:
    """Run web + worker + scheduler together (the embedded-defaults setup).

    Starts (or reuses) the embedded Redis, brings an embedded SQLite database
    to the newest schema, then supervises one child process per role: if any
    of them exits, the others are stopped and serve exits with an error.
    """
    from ichnaea.migrate import migrate as run_migrate

    settings = start_role("serve")
    log_embedded_defaults(settings)
    embedded = start_embedded_redis(settings)
    try:
        if settings.db_embedded:
            run_migrate(settings, echo=log.info)
            _ensure_archive(settings)
        stop = ShutdownFlag().install()
        children = {
            role: subprocess.Popen([sys.executable, "-m", "ichnaea", role]) for role in ROLES
        }
        log.info("serving on http://%s:%d", settings.host, settings.port)
        failed = None
        while not stop.is_set() and failed is None:
            failed = next((r for r, p in children.items() if p.poll() is not None), None)
            stop.wait(0.5)
        for proc in children.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 30
        for role, proc in children.items():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("%s did not stop in time; killing it", role)
                proc.kill()
                proc.wait()
        if failed is not None:
            code = children[failed].returncode
            raise click.ClickException(f"the {failed} process exited with code {code}")
    finally:
        if embedded is not None:
            embedded.stop()
