import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ichnaea.__main__ import cli

COMMANDS = [
    "serve", "web", "worker", "scheduler", "map", "migrate", "process", "apikey", "shell",
    "check-build", "status", "replay", "deadletter", "export", "import",
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output


def test_top_level_help_lists_the_roles() -> None:
    output = CliRunner().invoke(cli, ["--help"]).output
    for command in COMMANDS:
        assert command in output


def test_bad_setting_stops_with_the_variable_name(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["migrate"], env={"PORT": "not-a-port", "ICHNAEA_DATA_DIR": str(tmp_path)}
    )
    assert result.exit_code == 1
    assert "configuration error: PORT:" in result.output


def test_env_file_settings_reach_the_command(tmp_path: Path) -> None:
    env_file = tmp_path / "ichnaea.env"
    env_file.write_text(f"ICHNAEA_DATA_DIR={tmp_path / 'from-file'}\n")
    result = CliRunner().invoke(
        cli,
        ["--env-file", str(env_file), "migrate"],
        env={
            "ICHNAEA_DATA_DIR": None,
            "DB_READWRITE_URI": None,
            "DB_HOST": None,
        },
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "from-file" / "ichnaea.sqlite").is_file()


def test_missing_env_file_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--env-file", str(tmp_path / "nope.env"), "migrate"])
    assert result.exit_code == 2
    assert "cannot read" in result.output


def test_check_build_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ichnaea", "check-build"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "compiled core OK" in done.stdout


def test_map_without_asset_bucket_or_output_says_what_to_give() -> None:
    result = CliRunner().invoke(cli, ["map"], env={"ASSET_BUCKET": ""})
    assert result.exit_code == 1
    assert "ASSET_BUCKET is not set: give --output DIR" in result.output
