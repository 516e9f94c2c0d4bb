import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from ichnaea.__main__ import cli
from ichnaea.migrate import head_revision


def test_migrate_then_create_key_on_a_new_mariadb_database(mysql_scratch_url: str) -> None:
    # The operator's path: a URL naming a database that does not exist yet.
    url = mysql_scratch_url.replace("mysql+mysqldb://", "mysql://")
    env = {"DB_READWRITE_URI": url}
    runner = CliRunner()
    migrated = runner.invoke(cli, ["migrate"], env=env)
    assert migrated.exit_code == 0, migrated.output
    assert "Database schema at revision" in migrated.output

    created = runner.invoke(
        cli, ["apikey", "create", "test", "--allow-locate", "--allow-region"], env=env
    )
    assert created.exit_code == 0, created.output
    assert "Created API key: 'test'" in created.output
    shown = runner.invoke(cli, ["apikey", "show", "test"], env=env).output
    assert "allow_region                : True" in shown

    # Running migrate again is harmless.
    assert runner.invoke(cli, ["migrate"], env=env).exit_code == 0


def test_migrate_prints_the_revision_once_and_no_alembic_plugin_lines(tmp_path: Path) -> None:
    env = dict(os.environ, ICHNAEA_DATA_DIR=str(tmp_path))
    for name in ("DB_READWRITE_URI", "DB_READONLY_URI", "DB_DDL_URI", "DB_HOST"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "ichnaea", "migrate"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert done.stdout.count(head_revision()) == 1, done.stdout
    assert "setup plugin" not in done.stdout + done.stderr
