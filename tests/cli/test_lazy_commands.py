"""Subcommands are imported when used: the CLI and the worker pool's supervisor start light."""

from __future__ import annotations

import subprocess
import sys

import click

from ichnaea.__main__ import COMMANDS, cli


def test_every_lazy_subcommand_is_named_as_the_command_it_loads() -> None:
    ctx = click.Context(cli)
    assert cli.list_commands(ctx) == sorted(COMMANDS)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name


def test_the_cli_and_the_pool_supervisor_import_no_pipeline_and_no_api() -> None:
    # A fresh interpreter: what `ichnaea worker`'s supervisor loads before it
    # starts the fork server (which imports the pipeline once for all workers).
    code = (
        "import sys, click\n"
        "from ichnaea.__main__ import cli\n"
        "cli.get_command(click.Context(cli), 'worker')\n"
        "import ichnaea.worker.pool\n"
        "from ichnaea.cli.common import start_role\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('ichnaea.'))))\n"
        "print(' '.join(sorted(m for m in ('sqlalchemy', 'redis', 'boto3') if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    ours, libraries = done.stdout.split("\n")[:2]
    loaded = set(ours.split())
    assert "ichnaea.worker.pool" in loaded
    # Nor the database and Redis libraries: the supervisor only checks the
    # URLs' drivers (ichnaea.repositories.drivers) and watches its children.
    assert libraries.split() == []
    heavy = {m for m in loaded if m.startswith(("ichnaea.pipeline", "ichnaea.api", "ichnaea.web"))}
    assert heavy == set()
    assert "ichnaea.worker.jobs" not in loaded


def test_the_worker_fork_server_loads_no_http_client_and_no_s3_library() -> None:
    # What every worker process inherits: the pipeline and the geocoder, not
    # the clients of the exporters that most pools never use.
    code = (
        "import sys\n"
        "import ichnaea.worker.preload\n"
        "print(' '.join(sorted(m for m in ('httpx', 'boto3') if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == []
