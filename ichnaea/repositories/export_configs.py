"""SQL for the ``export_config`` table: read every export destination."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ichnaea.models.api_key import ExportConfig


def list_export_configs(session: Session) -> Sequence[ExportConfig]:
    return session.scalars(sa.select(ExportConfig).order_by(ExportConfig.name)).all()


ARCHIVE_NAME = "archive"
ARCHIVE_TEMPLATE = "{source}/{api_key}/{year}/{month}/{day}"
ARCHIVE_BATCH = 1000


def ensure_local_archive(session: Session, directory: Path) -> bool:
    """Add the ``archive`` export (schema ``file``) under ``directory`` unless one exists.

    The embedded single-host setup keeps every submitted report as gzip JSON
    files, so ``ichnaea replay`` can rebuild the stations from them. An
    operator who deletes the row (or renames it) is not overruled: only a
    database without any ``archive`` row gets it. Returns whether it was added.
    """
    if session.get(ExportConfig, ARCHIVE_NAME) is not None:
        return False
    url = f"file://{directory.resolve()}/{ARCHIVE_TEMPLATE}"
    session.add(ExportConfig(name=ARCHIVE_NAME, batch=ARCHIVE_BATCH, schema="file", url=url))
    session.commit()
    return True
