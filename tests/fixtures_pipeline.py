"""The data pipeline end to end in one test process: submit through the app, then process.

``pipeline`` runs on both backend pairs (MariaDB + Redis server, SQLite +
embedded Redis). It submits through the real ASGI app (``client``), runs
every queue job until the queues are empty plus the periodic jobs, exactly
as ``ichnaea process`` does, and reads rows back. Every table the pipeline
writes is emptied before and after each test.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from starlette.testclient import TestClient

from ichnaea.config import Settings
from ichnaea.models.all import metadata
from ichnaea.repositories.session import create_engine
from ichnaea.worker.jobs import Resources, run_periodic_jobs, run_queue_jobs
from tests._support import RecordingMetrics

KEEP = {"alembic_version", "export_config"}


class Pipeline:
    def __init__(self, settings: Settings, client: TestClient) -> None:
        self.settings = settings
        self.client = client
        self.engine = create_engine(settings.db_readwrite_url, pooled=False)
        assert settings.redis_url is not None  # the backends are real servers
        self.redis = redis.Redis.from_url(settings.redis_url)
        self.metrics = RecordingMetrics()
        self.resources = Resources(
            settings,
            self.engine,
            self.redis,
            metrics=self.metrics,
            drain=True,
        )

    def wipe(self) -> None:
        with self.engine.begin() as conn:
            for table in metadata.sorted_tables:
                if table.name not in KEEP:
                    conn.execute(table.delete())
            conn.execute(sa.text("DELETE FROM export_config WHERE name != 'internal'"))

    def export_config(self, name: str, **values: Any) -> None:
        table = metadata.tables["export_config"]
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(table.c.name == name))
            conn.execute(table.insert().values(name=name, **values))
        self.resources._targets.clear()  # re-read at the next use

    def api_key(self, key: str = "test", **values: Any) -> None:
        table = metadata.tables["api_key"]
        row = {"valid_key": key, "allow_locate": True, "allow_region": True}
        row.update(values)
        with self.engine.begin() as conn:
            conn.execute(table.insert().values(**row))

    def submit(self, reports: Sequence[dict[str, Any]], api_key: str | None = "test") -> None:
        url = "/v2/geosubmit" + (f"?key={api_key}" if api_key else "")
        response = self.client.post(url, json={"items": list(reports)})
        assert response.status_code == 200, response.text

    def run(self) -> int:
        """Process until every queue is empty (and the periodic jobs ran once)."""
        total = 0
        while handled := run_queue_jobs(self.resources):
            total += handled
        run_periodic_jobs(self.resources)
        while handled := run_queue_jobs(self.resources):
            total += handled
        return total

    def rows(self, table_name: str) -> list[dict[str, Any]]:
        table = metadata.tables[table_name]
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(sa.select(table)).mappings()]

    def close(self) -> None:
        self.wipe()
        self.engine.dispose()
        self.redis.close()


@pytest.fixture
def pipeline(app_settings: Settings, client: TestClient) -> Iterator[Pipeline]:
    pipe = Pipeline(app_settings, client)
    pipe.wipe()
    try:
        yield pipe
    finally:
        pipe.close()
