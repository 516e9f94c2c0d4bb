"""SQL for the ``export_config`` table: read every export destination."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ichnaea.models.api_key import ExportConfig


def list_export_configs(session: Session) -> Sequence[ExportConfig]:
    return session.scalars(sa.select(ExportConfig).order_by(ExportConfig.name)).all()
