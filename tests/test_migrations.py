"""The migrations build exactly the schema the models describe, on both backends.

``compare_metadata`` runs with ``compare_type=True``. No reflection noise
needs to be filtered: the portable types in ``ichnaea.models.base`` were
chosen so that each backend reflects what the models declare (notably
``BLOB`` rather than ``BINARY(n)`` on SQLite). Alembic does not compare
MySQL's ``UNSIGNED`` flag, so a separate test checks it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Integer, MetaData, String, inspect, select
from sqlalchemy import text as sa_text
from sqlalchemy.orm import Session

from ichnaea.migrate import UNKNOWN_REVISION, alembic_config, current_revision, head_revision
from ichnaea.models.all import metadata
from ichnaea.models.api_key import ExportConfig
from ichnaea.repositories.api_keys import get_api_key
from ichnaea.repositories.session import create_engine

REPO = Path(__file__).resolve().parent.parent
VERSIONS = REPO / "migrations" / "versions"
SCHEMA_TABLES = set(metadata.tables)


def run_alembic(url: str, action: str, revision: str) -> None:
    engine = create_engine(url, pooled=False)
    try:
        with engine.begin() as connection:
            getattr(command, action)(alembic_config(connection), revision)
    finally:
        engine.dispose()


def schema_differences(url: str, target: MetaData = metadata) -> list[Any]:
    engine = create_engine(url, pooled=False)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, target))
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = create_engine(url, pooled=False)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def revision_of(url: str) -> str:
    engine = create_engine(url, pooled=False)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


def export_configs(url: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url, pooled=False)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(ExportConfig.name, ExportConfig.batch, ExportConfig.schema)
            )
            return [tuple(row) for row in rows]
    finally:
        engine.dispose()


def test_upgrade_head_on_empty_database_matches_models(empty_db_url: str) -> None:
    run_alembic(empty_db_url, "upgrade", "head")
    assert table_names(empty_db_url) == SCHEMA_TABLES | {"alembic_version"}
    assert schema_differences(empty_db_url) == []
    assert revision_of(empty_db_url) == head_revision()


def test_schema_comparison_reports_changed_column_types(empty_db_url: str) -> None:
    # Guards against a vacuous comparison: a model change must show up.
    run_alembic(empty_db_url, "upgrade", "head")
    changed = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["api_key"].c.fallback_url.type = String(255)
    changed.tables["cell_nr"].c.cid.type = Integer()

    differences = schema_differences(empty_db_url, changed)

    modified = sorted((d[0][2], d[0][3]) for d in differences if d[0][0] == "modify_type")
    assert modified == [("api_key", "fallback_url"), ("cell_nr", "cid")]


@pytest.mark.mysql
@pytest.mark.parametrize("empty_db_url", ["mysql"], indirect=True)
def test_mysql_unsigned_flags_match_models(empty_db_url: str) -> None:
    run_alembic(empty_db_url, "upgrade", "head")
    engine = create_engine(empty_db_url, pooled=False)
    try:
        inspector = inspect(engine)
        mismatches = []
        for table in metadata.tables.values():
            reflected = {c["name"]: c["type"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                expected = getattr(column.type.dialect_impl(engine.dialect), "unsigned", False)
                actual = getattr(reflected[column.name], "unsigned", False)
                if expected != actual:
                    mismatches.append((table.name, column.name, expected, actual))
    finally:
        engine.dispose()
    assert mismatches == []
    assert table_names(empty_db_url)  # the comparison above saw the real tables


@pytest.mark.mysql
@pytest.mark.parametrize("empty_db_url", ["mysql"], indirect=True)
def test_mysql_collations_match_models(empty_db_url: str) -> None:
    # compare_metadata ignores collations too (api_key.valid_key is binary).
    run_alembic(empty_db_url, "upgrade", "head")
    engine = create_engine(empty_db_url, pooled=False)
    try:
        inspector = inspect(engine)
        declared, reflected = {}, {}
        for table in metadata.tables.values():
            types = {c["name"]: c["type"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                name = f"{table.name}.{column.name}"
                declared[name] = getattr(
                    column.type.dialect_impl(engine.dialect), "collation", None
                )
                reflected[name] = getattr(types[column.name], "collation", None)
    finally:
        engine.dispose()
    assert reflected == declared
    assert declared["api_key.valid_key"] == "utf8mb4_bin"


def test_downgrade_base_then_upgrade_head_round_trips(empty_db_url: str) -> None:
    run_alembic(empty_db_url, "upgrade", "head")
    run_alembic(empty_db_url, "downgrade", "base")
    assert table_names(empty_db_url) == {"alembic_version"}
    assert revision_of(empty_db_url) == UNKNOWN_REVISION

    run_alembic(empty_db_url, "upgrade", "head")
    assert schema_differences(empty_db_url) == []
    assert export_configs(empty_db_url) == [("internal", 100, "internal")]


def test_stamp_base_then_upgrade_head_builds_schema_from_settings(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The original deployment guide's sequence, through alembic.ini and
    # env.py's default: the URL comes from ichnaea.config.load_settings().
    for name in ("DB_READONLY_URI", "DB_READWRITE_URI", "SQLALCHEMY_URL", "DB_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DB_DDL_URI", empty_db_url)
    config = Config(REPO / "alembic.ini")
    config.attributes["configure_logger"] = False

    command.stamp(config, "base")
    assert table_names(empty_db_url) == {"alembic_version"}
    command.upgrade(config, "head")

    assert table_names(empty_db_url) == SCHEMA_TABLES | {"alembic_version"}
    assert revision_of(empty_db_url) == head_revision()


def test_upgrade_head_uses_sqlalchemy_url_option_when_given(empty_db_url: str) -> None:
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", empty_db_url.replace("%", "%%"))
    command.upgrade(config, "head")
    assert revision_of(empty_db_url) == head_revision()


def test_upgrade_head_seeds_internal_export_config(db_session: Session) -> None:
    rows = db_session.execute(select(ExportConfig)).scalars().all()
    assert [(r.name, r.batch, r.schema, r.url, r.skip_keys, r.skip_sources) for r in rows] == [
        ("internal", 100, "internal", None, None, None)
    ]


def test_migrations_have_a_single_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1
    assert heads[0] == head_revision()


def migration_files() -> list[Path]:
    files = sorted(VERSIONS.glob("*.py"))
    assert files, f"no migrations in {VERSIONS}"
    return files


def test_migrations_do_not_import_the_models() -> None:
    for path in migration_files():
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
        assert not {m for m in imported if m.startswith("ichnaea")}, path.name


def test_migration_file_names_carry_date_and_revision() -> None:
    pattern = re.compile(r"^\d{4}_\d{2}_\d{2}_\d{4}-(?P<rev>[0-9a-f]{12})_[a-z0-9_]+\.py$")
    for path in migration_files():
        match = pattern.match(path.name)
        assert match, path.name
        assert f'revision: str = "{match["rev"]}"' in path.read_text(encoding="utf-8")


def test_nr_areas_move_to_their_own_table_with_nine_byte_keys(empty_db_url: str) -> None:
    import struct
    from datetime import datetime

    import sqlalchemy as sa

    run_alembic(empty_db_url, "upgrade", "5b1f0c7d2e41")
    engine = create_engine(empty_db_url, pooled=False)
    row = {"radio": 4, "mcc": 310, "mnc": 410, "lac": 513, "lat": 1.5, "lon": 2.5,
           "num_cells": 3, "created": datetime(2026, 1, 2, 3, 4, 5)}  # fmt: skip
    lte = {**row, "radio": 3}
    try:
        with engine.begin() as conn:
            for values in (row, lte):
                key = struct.pack("!bHHH", values["radio"], 310, 410, 513)
                conn.execute(sa.text(
                    "INSERT INTO cell_area (areaid, radio, mcc, mnc, lac, lat, lon, num_cells, "
                    "created) VALUES (:areaid, :radio, :mcc, :mnc, :lac, :lat, :lon, :num_cells, "
                    ":created)"), {**values, "areaid": key})  # fmt: skip
        run_alembic(empty_db_url, "upgrade", "head")
        with engine.connect() as conn:
            moved = conn.execute(sa.text("SELECT areaid, lac, lat, num_cells FROM cell_area_nr"))
            assert [tuple(r) for r in moved] == [(struct.pack("!bHHI", 4, 310, 410, 513), 513,
                                                  1.5, 3)]  # fmt: skip
            kept = conn.execute(sa.text("SELECT radio FROM cell_area")).scalars().all()
            assert kept == [3]
    finally:
        engine.dispose()


def key_collation(url: str) -> str:
    engine = create_engine(url, pooled=False)
    try:
        with engine.connect() as conn:
            return str(
                conn.execute(
                    sa_text(
                        "SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE "
                        "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'api_key' "
                        "AND COLUMN_NAME = 'valid_key'"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


def insert_keys(url: str, *keys: str) -> None:
    engine = create_engine(url, pooled=False)
    try:
        with engine.begin() as conn:
            for key in keys:
                conn.execute(sa_text("INSERT INTO api_key (valid_key) VALUES (:k)"), {"k": key})
    finally:
        engine.dispose()


def keys_matching(url: str, key: str) -> list[str]:
    """The previous release's lookup, as plain SQL: it must keep working on the new schema."""
    engine = create_engine(url, pooled=False)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                sa_text("SELECT valid_key FROM api_key WHERE valid_key = :k"), {"k": key}
            )
            return list(found.scalars())
    finally:
        engine.dispose()


BEFORE_BINARY_KEYS = "9d3e6a1f4b27"


@pytest.mark.mysql
@pytest.mark.parametrize("empty_db_url", ["mysql"], indirect=True)
def test_api_keys_compare_binary_after_upgrade_and_not_after_downgrade(empty_db_url: str) -> None:
    run_alembic(empty_db_url, "upgrade", BEFORE_BINARY_KEYS)
    insert_keys(empty_db_url, "relkey")
    assert keys_matching(empty_db_url, "RELKEY") == ["relkey"]  # the defect

    run_alembic(empty_db_url, "upgrade", "head")
    assert key_collation(empty_db_url) == "utf8mb4_bin"
    assert keys_matching(empty_db_url, "RELKEY") == []
    assert keys_matching(empty_db_url, "relkey") == ["relkey"]
    insert_keys(empty_db_url, "RELKEY")

    # Two keys that differ only in case cannot both exist under the old collation.
    with pytest.raises(RuntimeError, match="RELKEY"):
        run_alembic(empty_db_url, "downgrade", BEFORE_BINARY_KEYS)
    assert sorted(
        keys_matching(empty_db_url, "RELKEY") + keys_matching(empty_db_url, "relkey")
    ) == [
        "RELKEY",
        "relkey",
    ]
    engine = create_engine(empty_db_url, pooled=False)
    try:
        with engine.begin() as conn:
            conn.execute(sa_text("DELETE FROM api_key WHERE valid_key = 'RELKEY'"))
    finally:
        engine.dispose()
    run_alembic(empty_db_url, "downgrade", BEFORE_BINARY_KEYS)
    assert key_collation(empty_db_url) != "utf8mb4_bin"
    assert keys_matching(empty_db_url, "RELKEY") == ["relkey"]


def test_new_key_lookup_is_exact_on_the_previous_schema(empty_db_url: str) -> None:
    # Expand/contract: web processes of this release may start before the
    # migration ran; their lookup must not match another case there either.
    run_alembic(empty_db_url, "upgrade", BEFORE_BINARY_KEYS)
    insert_keys(empty_db_url, "relkey")
    engine = create_engine(empty_db_url, pooled=False)
    try:
        with Session(engine) as session:
            assert get_api_key(session, "RELKEY") is None
            found = get_api_key(session, "relkey")
            assert found is not None and found.valid_key == "relkey"
    finally:
        engine.dispose()
