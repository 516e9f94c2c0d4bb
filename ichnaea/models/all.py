"""Import every model module so that ``Base.metadata`` describes the whole schema.

Model modules do not import each other except for shared building blocks
(``base``, ``station``), so a module that needs the complete metadata —
Alembic's ``env.py``, the migration tests — imports :data:`metadata` from
here instead of relying on whichever models happen to be imported.
"""

from __future__ import annotations

from sqlalchemy import MetaData

from ichnaea.models import api_key, cell, pipeline, station, stats
from ichnaea.models.base import Base

MODEL_MODULES = (api_key, cell, pipeline, station, stats)

metadata: MetaData = Base.metadata
