"""``ichnaea migrate``: database and account creation, then the schema, on real servers."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from ichnaea.config import DbUser, Settings
from ichnaea.migrate import (
    MIGRATIONS_DIR_ENV,
    UNKNOWN_REVISION,
    MigrationsNotFoundError,
    current_revision,
    head_revision,
    migrate,
    migrations_dir,
)
from ichnaea.repositories.monitoring import read_replica_status
from ichnaea.repositories.session import create_engine
from tests.fixtures_db import db_prefix

REPO = Path(__file__).resolve().parent.parent

# MySQL error numbers.
COMMAND_DENIED = 1142
ACCESS_DENIED = 1045


def quiet(_line: str) -> None:
    """An ``echo`` for migrate() that discards the progress lines."""


def settings_for(url: str, data_dir: Path, **users: DbUser | None) -> Settings:
    return Settings(
        data_dir=data_dir,
        db_readonly_url=url,
        db_readwrite_url=url,
        db_ddl_url=url,
        db_readonly_user=users.get("ro"),
        db_readwrite_user=users.get("rw"),
    )


def count_export_configs(url: str) -> int:
    engine = create_engine(url, pooled=False)
    try:
        with engine.connect() as connection:
            return int(
                connection.exec_driver_sql("SELECT COUNT(*) FROM export_config").scalar_one()
            )
    finally:
        engine.dispose()


@pytest.fixture
def mysql_accounts(mysql_server_url: URL, worker_id: str) -> Iterator[tuple[str, str]]:
    """Names of a read-only and a read-write account, absent before and after the test."""
    names = (f"{db_prefix()}_ro_{worker_id}", f"{db_prefix()}_rw_{worker_id}")

    def drop() -> None:
        engine = sa.create_engine(mysql_server_url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                for name in names:
                    connection.exec_driver_sql("DROP USER IF EXISTS %s@'%%'", (name,))
        finally:
            engine.dispose()

    drop()
    yield names
    drop()


def connect_as(url: str, user: str, password: str) -> sa.Engine:
    account_url = make_url(url).set(username=user, password=password)
    return sa.create_engine(account_url, poolclass=NullPool)


def mysql_errno(exc: OperationalError) -> int:
    return int(exc.orig.args[0])  # type: ignore[union-attr]


@pytest.mark.mysql
def test_migrate_creates_missing_mysql_database(mysql_scratch_url: str, tmp_path: Path) -> None:
    lines: list[str] = []

    revision = migrate(settings_for(mysql_scratch_url, tmp_path), echo=lines.append)

    assert revision == head_revision()
    assert count_export_configs(mysql_scratch_url) == 1
    assert lines[0].startswith("Creating database `")
    assert lines[-1] == f"Database schema at revision {revision}"


@pytest.mark.mysql
def test_migrate_is_idempotent_on_rerun(mysql_scratch_url: str, tmp_path: Path) -> None:
    settings = settings_for(mysql_scratch_url, tmp_path)
    first = migrate(settings, echo=quiet)
    second = migrate(settings, echo=quiet)
    assert first == second == head_revision()
    assert count_export_configs(mysql_scratch_url) == 1


@pytest.mark.mysql
def test_migrate_grants_select_only_to_readonly_user(
    mysql_scratch_url: str, mysql_accounts: tuple[str, str], tmp_path: Path
) -> None:
    ro_name, rw_name = mysql_accounts
    settings = settings_for(
        mysql_scratch_url, tmp_path, ro=DbUser(ro_name, "ro-secret"), rw=DbUser(rw_name, "rw-pw")
    )
    migrate(settings, echo=quiet)
    migrate(settings, echo=quiet)  # re-running with existing accounts is fine

    readonly = connect_as(mysql_scratch_url, ro_name, "ro-secret")
    try:
        with readonly.connect() as connection:
            assert connection.exec_driver_sql("SELECT name FROM export_config").scalars().all() == [
                "internal"
            ]
            with pytest.raises(OperationalError) as denied:
                connection.exec_driver_sql("INSERT INTO api_key (valid_key) VALUES ('ro')")
            assert mysql_errno(denied.value) == COMMAND_DENIED
            # The heartbeat may read the replica's state (here: no replica).
            assert read_replica_status(connection) is None
    finally:
        readonly.dispose()


@pytest.mark.mysql
def test_migrate_grants_data_changes_but_no_ddl_to_readwrite_user(
    mysql_scratch_url: str, mysql_accounts: tuple[str, str], tmp_path: Path
) -> None:
    _, rw_name = mysql_accounts
    migrate(settings_for(mysql_scratch_url, tmp_path, rw=DbUser(rw_name, "rw-pw")), echo=quiet)

    readwrite = connect_as(mysql_scratch_url, rw_name, "rw-pw")
    try:
        with readwrite.begin() as connection:
            connection.exec_driver_sql("INSERT INTO api_key (valid_key) VALUES ('rw')")
            connection.exec_driver_sql("UPDATE api_key SET maxreq = 1 WHERE valid_key = 'rw'")
            connection.exec_driver_sql("DELETE FROM api_key WHERE valid_key = 'rw'")
        with readwrite.connect() as connection, pytest.raises(OperationalError) as denied:
            connection.exec_driver_sql("CREATE TABLE not_allowed (x INT)")
        assert mysql_errno(denied.value) == COMMAND_DENIED
    finally:
        readwrite.dispose()


@pytest.mark.mysql
def test_migrate_sets_configured_password_of_existing_user(
    mysql_scratch_url: str, mysql_accounts: tuple[str, str], tmp_path: Path
) -> None:
    ro_name, _ = mysql_accounts
    migrate(settings_for(mysql_scratch_url, tmp_path, ro=DbUser(ro_name, "old")), echo=quiet)
    migrate(settings_for(mysql_scratch_url, tmp_path, ro=DbUser(ro_name, "new")), echo=quiet)

    for password, works in (("new", True), ("old", False)):
        engine = connect_as(mysql_scratch_url, ro_name, password)
        try:
            if works:
                with engine.connect():
                    pass
            else:
                with pytest.raises(OperationalError) as denied, engine.connect():
                    pass
                assert mysql_errno(denied.value) == ACCESS_DENIED
        finally:
            engine.dispose()


def test_migrate_rejects_mysql_url_without_database(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="names no database"):
        migrate(settings_for("mysql+mysqldb://root@127.0.0.1:3306", tmp_path), echo=quiet)


def test_migrate_creates_sqlite_data_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "data" / "nested"
    url = f"sqlite:///{data_dir / 'ichnaea.sqlite'}"

    revision = migrate(settings_for(url, data_dir), echo=quiet)

    assert revision == head_revision()
    assert (data_dir / "ichnaea.sqlite").is_file()
    assert count_export_configs(url) == 1


def test_migrate_finds_migrations_through_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What an installed wheel does: the folder lives outside the package.
    copied = tmp_path / "shipped-migrations"
    shutil.copytree(REPO / "migrations", copied, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv(MIGRATIONS_DIR_ENV, str(copied))
    url = f"sqlite:///{tmp_path / 'ichnaea.sqlite'}"

    assert migrations_dir() == copied
    assert migrate(settings_for(url, tmp_path), echo=quiet) == head_revision(copied)


def test_migrations_dir_names_the_variable_when_folder_is_missing(tmp_path: Path) -> None:
    with pytest.raises(MigrationsNotFoundError, match=MIGRATIONS_DIR_ENV):
        migrations_dir({MIGRATIONS_DIR_ENV: str(tmp_path)})


def test_migrations_dir_defaults_to_source_tree() -> None:
    assert migrations_dir({}) == REPO / "migrations"


def test_current_revision_is_unknown_on_empty_database(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    try:
        assert current_revision(engine) == UNKNOWN_REVISION
    finally:
        engine.dispose()
