"""The export_config rows the embedded setup adds for itself."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from ichnaea.models.api_key import ExportConfig
from ichnaea.repositories.export_configs import ensure_local_archive, list_export_configs


def test_local_archive_is_added_once_and_never_overruled(
    db_session: Session, tmp_path: Path
) -> None:
    assert ensure_local_archive(db_session, tmp_path / "a")
    row = db_session.get(ExportConfig, "archive")
    assert row is not None
    assert (row.schema, row.batch) == ("file", 1000)
    assert (
        row.url
        == f"file://{(tmp_path / 'a').resolve()}/{{source}}/{{api_key}}/{{year}}/{{month}}/{{day}}"
    )
    # A second call (next start) keeps what is there, even if the operator changed it.
    row.url = "file:///elsewhere/{source}"
    db_session.commit()
    assert not ensure_local_archive(db_session, tmp_path / "b")
    assert [r.name for r in list_export_configs(db_session)] == ["archive", "internal"]
    assert db_session.get(ExportConfig, "archive").url == "file:///elsewhere/{source}"  # type: ignore[union-attr]
