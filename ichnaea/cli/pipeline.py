"""Operator commands of the data pipeline: status, replay archives, dead letters."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from ichnaea.cli.common import start_role, use_embedded_redis

# Reports queued by one push of ``ichnaea replay`` (at most the backlog limit).
REPLAY_CHUNK = 1000


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--api-key", help="API key to attribute the replayed reports to [default: none].")
@click.option(
    "--through-incoming",
    is_flag=True,
    help="Queue to update_incoming, so every export target gets the reports again "
    "[default: only the internal station pipeline].",
)
@click.option(
    "--process/--no-process",
    "run_stages",
    default=False,
    help="Run the pipeline stages in this process until the queues are empty "
    "(for a single host without a worker running).",
)
def replay(
    paths: tuple[Path, ...], api_key: str | None, through_incoming: bool, run_stages: bool
) -> None:
    """Re-ingest archived reports (the s3/file export's .json.gz files) through the pipeline.

    PATHS are files or directories (searched for *.json.gz and *.json). A
    file that cannot be read is named with the reason and skipped. Reports
    are queued in chunks of at most 1000; while a chunk would push the
    waiting reports (update_incoming and the export queues) past
    MAX_QUEUE_BACKLOG, replay waits for the workers (or, with --process,
    processes) before queueing it.
    """
    from ichnaea.broker import keyspace
    from ichnaea.broker.client import connect
    from ichnaea.broker.queue import encode_item, push_within
    from ichnaea.metrics import make_metrics
    from ichnaea.pipeline.ingest.backlog import waiting_elsewhere
    from ichnaea.pipeline.ingest.replay import (
        ReplayFileError,
        ReplaySummary,
        archive_files,
        export_items,
        read_reports,
    )
    from ichnaea.repositories.session import create_engine
    from ichnaea.worker.jobs import Resources, run_queue_jobs

    settings = start_role("replay")
    use_embedded_redis(settings)
    client = connect(settings)
    engine = create_engine(settings.db_readwrite_url)
    resources = Resources(settings, engine, client, metrics=make_metrics(settings), drain=True)
    try:
        files = archive_files(paths)
    except ReplayFileError as exc:
        raise click.ClickException(str(exc)) from exc
    targets, _ = resources.targets()
    if through_incoming:
        queue = keyspace.INCOMING
    else:
        internal = [t for t in targets if t.schema == "internal"]
        if not internal:
            raise click.ClickException(
                "no export_config with schema 'internal': nothing to replay into"
            )
        queue = internal[0].base_queue
    summary = ReplaySummary()
    started = time.monotonic()
    try:
        for number, path in enumerate(files, 1):
            click.echo(
                f"\r[{number}/{len(files)}] {summary.reports} reports queued into {queue}",
                err=True,
                nl=False,
            )
            try:
                reports = read_reports(path)
            except ReplayFileError as exc:
                summary.failed.append(str(exc))
                click.echo(f"\nskipped {exc}", err=True)
                continue
            items = [
                encode_item(item)
                for item in export_items(reports, api_key, with_source=through_incoming)
            ]
            # A chunk never exceeds the limit, so it fits once the pipeline drained.
            chunk_size = min(REPLAY_CHUNK, settings.max_queue_backlog)
            for start in range(0, len(items), chunk_size):
                chunk = items[start : start + chunk_size]
                while not push_within(
                    client,
                    queue,
                    chunk,
                    limit=settings.max_queue_backlog,
                    elsewhere=waiting_elsewhere(client, resources.targets()[0], besides=queue),
                ):
                    # Nothing processed (an exporter failing, say): do not spin.
                    if not (run_stages and run_queue_jobs(resources)):
                        time.sleep(1)
            summary.files += 1
            summary.reports += len(reports)
        click.echo("", err=True)
        processed = 0
        if run_stages:
            while handled := run_queue_jobs(resources):
                processed += handled
    finally:
        engine.dispose()
        client.close()
    elapsed = time.monotonic() - started
    click.echo(
        f"replayed {summary.reports} reports from {summary.files} files in {elapsed:.1f} s"
        + (f"; {processed} queue items processed" if run_stages else "; queued for the workers")
    )
    if summary.failed:
        click.echo(f"{len(summary.failed)} files skipped:", err=True)
        for line in summary.failed:
            click.echo(f"  {line}", err=True)
        raise SystemExit(1)


@click.group()
def deadletter() -> None:
    """Export batches that kept failing, parked instead of dropped."""


@deadletter.command("list")
def deadletter_list() -> None:
    """List parked batches: queue, when it failed, how many reports."""
    from ichnaea.broker.client import connect
    from ichnaea.pipeline.deadletters import dead_letters

    settings = start_role("deadletter")
    use_embedded_redis(settings)
    client = connect(settings)
    count = 0
    for key, index, letter in dead_letters(client):
        failed = datetime.fromtimestamp(letter.get("failed_at", 0), UTC).isoformat(
            timespec="seconds"
        )
        size = len(letter.get("items") or letter.get("raw") or [])
        error = f"  ({letter['error']})" if letter.get("error") else ""
        click.echo(f"{key}[{index}]  failed {failed}  {size} items{error}")
        count += 1
    click.echo(f"{count} parked batches")


@deadletter.command("requeue")
@click.option("--queue", help="Only batches of this export queue [default: all].")
def deadletter_requeue(queue: str | None) -> None:
    """Put parked batches back on their export queue for another try."""
    from ichnaea.broker.client import connect
    from ichnaea.pipeline.deadletters import requeue_dead_letters

    settings = start_role("deadletter")
    use_embedded_redis(settings)
    moved = requeue_dead_letters(connect(settings), queue)
    click.echo(f"requeued {moved} items")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
def status(as_json: bool) -> None:
    """Queues, claimed batches, dead letters, the scheduler and the sample rate.

    Read-only. Exits 1 when Redis or the database cannot be reached, so it
    also serves as a check for the worker side.
    """
    from ichnaea.broker.client import connect
    from ichnaea.repositories.session import create_engine
    from ichnaea.worker.jobs import Resources
    from ichnaea.worker.status import pipeline_status, render

    settings = start_role("status")
    use_embedded_redis(settings)
    client = connect(settings)
    engine = create_engine(settings.db_readonly_url, pooled=False)
    try:
        found = pipeline_status(Resources(settings, engine, client))
    finally:
        engine.dispose()
        client.close()
    if as_json:
        click.echo(json.dumps(found.as_dict(), indent=2, sort_keys=True))
    else:
        for line in render(found):
            click.echo(line)
    if any("unreachable" in problem for problem in found.problems):
        raise SystemExit(1)
