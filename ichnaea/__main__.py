"""The ``ichnaea`` command: one subcommand per role and operator task.

    ichnaea serve        web + worker + scheduler together (embedded defaults)
    ichnaea web          the HTTP API (uvicorn, WEB_PROCESSES processes)
    ichnaea worker       the data pipeline worker pool
    ichnaea scheduler    the periodic-job scheduler (run exactly one)
    ichnaea map          render the coverage map tiles
    ichnaea migrate      create/upgrade the database schema (and users)
    ichnaea process      run every pipeline stage until the queues are empty
    ichnaea status       queues, claimed batches, dead letters, scheduler
    ichnaea replay ...   re-ingest archived reports (.json.gz) through the pipeline
    ichnaea deadletter   list or re-queue export batches that kept failing
    ichnaea export ...   the public cell export (CSV) or a station dump
    ichnaea import ...   load cell CSV files (MLS export format)
    ichnaea apikey ...   manage API keys
    ichnaea shell        a Python shell with settings, engine and Redis
    ichnaea check-build  verify the compiled core imports and computes

Configuration comes from the environment; ``--env-file FILE`` adds the
``KEY=value`` lines of FILE (variables already set in the environment win,
as with ``docker run --env-file ... -e KEY=...``).
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from ichnaea.cli.apikey import apikey
from ichnaea.cli.exchange import export_group, import_group
from ichnaea.cli.pipeline import deadletter, replay, status
from ichnaea.cli.roles import map_command, process, scheduler, serve, shell, web, worker
from ichnaea.cli.setup import check_build, migrate
from ichnaea.config import ConfigError, read_env_file


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="ICHNAEA_ENV_FILE",
    help="Read KEY=value settings from this file (as docker run --env-file).",
)
def cli(env_file: Path | None) -> None:
    """Ichnaea geolocation service."""
    if env_file is not None:
        try:
            values = read_env_file(env_file)
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from exc
        # Into the environment, so child processes (uvicorn workers, the pool,
        # the roles started by `serve`) read the same settings.
        for key, value in values.items():
            os.environ.setdefault(key, value)


for command in (
    serve,
    web,
    worker,
    scheduler,
    map_command,
    migrate,
    process,
    status,
    replay,
    deadletter,
    export_group,
    import_group,
    apikey,
    shell,
    check_build,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="ichnaea")


if __name__ == "__main__":
    main()
