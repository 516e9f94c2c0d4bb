from click.testing import CliRunner

from ichnaea.__main__ import cli


def test_migrate_then_create_key_on_a_new_mariadb_database(mysql_scratch_url: str) -> None:
    # The operator's path: a URL naming a database that does not exist yet.
    url = mysql_scratch_url.replace("mysql+mysqldb://", "mysql://")
    env = {"DB_READWRITE_URI": url}
    runner = CliRunner()
    migrated = runner.invoke(cli, ["migrate"], env=env)
    assert migrated.exit_code == 0, migrated.output
    assert "database is at revision" in migrated.output

    created = runner.invoke(
        cli, ["apikey", "create", "test", "--allow-locate", "--allow-region"], env=env
    )
    assert created.exit_code == 0, created.output
    assert "Created API key: 'test'" in created.output
    shown = runner.invoke(cli, ["apikey", "show", "test"], env=env).output
    assert "allow_region                : True" in shown

    # Running migrate again is harmless.
    assert runner.invoke(cli, ["migrate"], env=env).exit_code == 0
