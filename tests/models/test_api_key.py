"""API key defaults and the export configuration table."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ichnaea.models.api_key import ApiKey, ExportConfig


def test_new_api_key_allows_locate_and_region_but_not_fallback(db_session: Session) -> None:
    db_session.add(ApiKey(valid_key="test-key"))
    db_session.flush()
    db_session.expunge_all()

    key = db_session.get_one(ApiKey, "test-key")
    assert (key.allow_locate, key.allow_region, key.allow_fallback) == (True, True, False)
    assert (key.store_sample_locate, key.store_sample_submit) == (100, 100)
    assert (key.maxreq, key.fallback_name, key.fallback_url, key.fallback_schema) == (
        None,
        None,
        None,
        None,
    )


def test_api_key_stores_fallback_settings(db_session: Session) -> None:
    db_session.add(
        ApiKey(
            valid_key="k" * 40,
            maxreq=0,
            allow_fallback=True,
            fallback_name="fall",
            fallback_schema="ichnaea/v1",
            fallback_url="https://fallback.example/v1/geolocate?key=" + "x" * 200,
            fallback_ratelimit=10,
            fallback_ratelimit_interval=60,
            fallback_cache_expire=86400,
            store_sample_locate=0,
            store_sample_submit=-1,
        )
    )
    db_session.flush()
    db_session.expunge_all()
    key = db_session.get_one(ApiKey, "k" * 40)
    assert key.allow_fallback is True
    assert (key.fallback_ratelimit, key.fallback_cache_expire) == (10, 86400)
    assert (key.store_sample_locate, key.store_sample_submit) == (0, -1)


def test_export_config_requires_a_batch_size(db_session: Session) -> None:
    with pytest.raises(IntegrityError), db_session.begin_nested():
        db_session.add(ExportConfig(name="nobatch", schema="dummy"))
        db_session.flush()


def test_export_config_stores_skip_sets(db_session: Session) -> None:
    db_session.add(
        ExportConfig(
            name="upstream",
            batch=0,
            schema="geosubmit",
            url="https://upstream.example/v2/geosubmit",
            skip_keys="a,b",
            skip_sources="query,fused",
        )
    )
    db_session.flush()
    db_session.expunge_all()
    row = db_session.get_one(ExportConfig, "upstream")
    assert (row.batch, row.skip_keys, row.skip_sources) == (0, "a,b", "query,fused")
