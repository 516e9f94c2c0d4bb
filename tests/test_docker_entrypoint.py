"""The container entrypoint script: every CLI subcommand is a role; alembic runs in /app.

Docker itself does not run here: the script is run with ``sh`` and the
``ichnaea`` beside this Python on the PATH, as it is inside the image.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from ichnaea.__main__ import cli
from ichnaea.config import read_env_file

REPO = Path(__file__).resolve().parent.parent
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
ENV_EXAMPLE = REPO / "docker" / "ichnaea.env.example"


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # `ichnaea` is on PATH inside the image; here it is beside this Python.
    environ = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", **env)
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        check=False,
    )


def test_role_argument_runs_that_subcommand() -> None:
    done = run("check-build")
    assert done.returncode == 0, done.stderr
    assert "compiled core OK" in done.stdout


def test_role_arguments_are_passed_through() -> None:
    done = run("apikey", "--help")
    assert done.returncode == 0
    assert "Manage API keys" in done.stdout


@pytest.mark.parametrize("subcommand", cli.list_commands(click.Context(cli)))
def test_every_cli_subcommand_is_a_container_role(subcommand: str) -> None:
    done = run(subcommand, "--help")
    assert done.returncode == 0, done.stderr
    assert f"Usage: ichnaea {subcommand}" in done.stdout


def test_unknown_role_is_refused_by_the_cli() -> None:
    done = run("frobnicate")
    assert done.returncode == 2  # click's usage error
    assert "No such command 'frobnicate'" in done.stderr


@pytest.mark.mysql
def test_migrate_role_creates_a_missing_database_from_the_env_file(
    mysql_scratch_url: str, tmp_path: Path
) -> None:
    # The README's first Docker step, on a server without the database.
    env_file = tmp_path / "ichnaea.env"
    url = mysql_scratch_url.replace("mysql+mysqldb://", "mysql://")
    env_file.write_text(f"DB_READWRITE_URI={url}\nREDIS_URI=redis://127.0.0.1:6379/0\n")
    done = run("migrate", ICHNAEA_ENV_FILE=str(env_file), ICHNAEA_DATA_DIR=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "revision" in done.stdout


def test_env_example_names_only_variables_the_settings_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ichnaea import config

    read: set[str] = set()
    original = config._Env.text

    def recording(self: config._Env, name: str, default: str = "", *aliases: str) -> str:
        read.update((name, *aliases))
        return original(self, name, default, *aliases)

    monkeypatch.setattr(config._Env, "text", recording)
    # Every branch of the database and Redis settings, so each name is asked for.
    for environ in (
        {},
        {"DB_HOST": "db", "DB_USER": "ichnaea"},
        {"DB_HOST": "db", "DB_RO_USER": "ro", "DB_RW_USER": "rw"},
        {"REDIS_HOST": "redis"},
    ):
        config.load_settings(environ)

    named = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        # Settings and commented-out settings: KEY=value or # KEY=value.
        key, sep, _ = line.removeprefix("#").strip().partition("=")
        if sep and key.isupper() and " " not in key:
            named.add(key)
    assert len(named) >= 10
    assert named <= read, f"not read by the settings: {sorted(named - read)}"


def test_env_example_is_a_valid_configuration(tmp_path: Path) -> None:
    from ichnaea.config import load_settings

    values = read_env_file(ENV_EXAMPLE)
    settings = load_settings({**values, "ICHNAEA_DATA_DIR": str(tmp_path)})
    assert not settings.db_embedded and not settings.redis_embedded


def test_readme_docker_steps_migrate_with_the_example_env_file() -> None:
    readme = (REPO / "README.md").read_text()
    steps = readme.split("## Docker", 1)[1].split("```")[1]
    assert "alembic upgrade head" not in steps
    assert "docker/ichnaea.env.example" in steps
    assert steps.index("ichnaea migrate") < steps.index("ichnaea web")
