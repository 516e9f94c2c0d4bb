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

import importlib
import os
from pathlib import Path
from typing import Any

import click

from ichnaea.config import ConfigError, read_env_file

# Each subcommand is imported when it runs (or --help lists it), not at
# start-up: ``ichnaea worker`` need not import the web API, and every
# command starts a few tenths of a CPU second sooner.
COMMANDS = {
    "serve": "ichnaea.cli.roles:serve",
    "web": "ichnaea.cli.roles:web",
    "worker": "ichnaea.cli.roles:worker",
    "scheduler": "ichnaea.cli.roles:scheduler",
    "map": "ichnaea.cli.roles:map_command",
    "migrate": "ichnaea.cli.setup:migrate",
    "process": "ichnaea.cli.roles:process",
    "status": "ichnaea.cli.pipeline:status",
    "replay": "ichnaea.cli.pipeline:replay",
    "deadletter": "ichnaea.cli.pipeline:deadletter",
    "export": "ichnaea.cli.exchange:export_group",
    "import": "ichnaea.cli.exchange:import_group",
    "apikey": "ichnaea.cli.apikey:apikey",
    "shell": "ichnaea.cli.roles:shell",
    "check-build": "ichnaea.cli.setup:check_build",
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module when the subcommand is asked for
    (click's documented pattern for lazily loaded subcommands)."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module, name = self.lazy[cmd_name].split(":")
            command: click.Command = getattr(importlib.import_module(module), name)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
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


def main() -> None:
    cli(prog_name="ichnaea")


if __name__ == "__main__":
    main()
