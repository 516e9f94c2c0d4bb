"""ASGI factory for uvicorn's worker processes: settings from the environment."""

from __future__ import annotations

from starlette.applications import Starlette

from ichnaea.config import load_settings
from ichnaea.logging import configure_logging
from ichnaea.web.app import create_app


def create_app_from_env() -> Starlette:
    settings = load_settings()
    configure_logging(settings.logging_level, role="web")
    return create_app(settings)
