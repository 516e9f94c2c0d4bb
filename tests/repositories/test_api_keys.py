"""SQL for API keys, on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import CompileError
from sqlalchemy.orm import Session

from ichnaea.repositories.api_keys import (
    create_api_key,
    delete_api_key,
    get_api_key,
    list_api_keys,
    read_valid_keys,
    update_api_key,
)


def test_create_api_key_inserts_with_new_key_defaults(db_session: Session) -> None:
    assert create_api_key(db_session, valid_key="abc", maxreq=100) is True
    key = get_api_key(db_session, "abc")
    assert key is not None
    assert (key.maxreq, key.allow_locate, key.allow_region, key.allow_fallback) == (
        100,
        True,
        True,
        False,
    )
    assert (key.store_sample_locate, key.store_sample_submit) == (100, 100)


def test_create_api_key_returns_false_and_keeps_row_when_key_exists(db_session: Session) -> None:
    assert create_api_key(db_session, valid_key="abc", maxreq=1)
    assert create_api_key(db_session, valid_key="abc", maxreq=2) is False
    key = get_api_key(db_session, "abc")
    assert key is not None and key.maxreq == 1


def test_create_api_key_rejects_unknown_column(db_session: Session) -> None:
    with pytest.raises(CompileError):
        create_api_key(db_session, valid_key="abc", no_such_column=1)


def test_get_api_key_returns_none_for_unknown_key(db_session: Session) -> None:
    assert get_api_key(db_session, "missing") is None


def test_list_api_keys_orders_by_key(db_session: Session) -> None:
    for name in ("b", "c", "a"):
        create_api_key(db_session, valid_key=name)
    assert [k.valid_key for k in list_api_keys(db_session)] == ["a", "b", "c"]


def test_list_api_keys_is_empty_without_keys(db_session: Session) -> None:
    assert list_api_keys(db_session) == []


def test_update_api_key_sets_given_columns_only(db_session: Session) -> None:
    create_api_key(db_session, valid_key="abc", maxreq=5)
    assert update_api_key(db_session, "abc", allow_fallback=True, fallback_name="fb") is True
    key = get_api_key(db_session, "abc")
    assert key is not None
    assert (key.allow_fallback, key.fallback_name, key.maxreq) == (True, "fb", 5)


def test_update_api_key_reports_existing_key_even_when_nothing_changes(
    db_session: Session,
) -> None:
    create_api_key(db_session, valid_key="abc", maxreq=5)
    assert update_api_key(db_session, "abc", maxreq=5) is True
    assert update_api_key(db_session, "abc") is True


def test_update_api_key_returns_false_for_unknown_key(db_session: Session) -> None:
    assert update_api_key(db_session, "missing", maxreq=1) is False
    assert update_api_key(db_session, "missing") is False


def test_delete_api_key_removes_row(db_session: Session) -> None:
    create_api_key(db_session, valid_key="abc")
    assert delete_api_key(db_session, "abc") is True
    assert get_api_key(db_session, "abc") is None
    assert delete_api_key(db_session, "abc") is False


def test_api_key_changes_survive_a_commit_by_the_caller(db_session: Session) -> None:
    create_api_key(db_session, valid_key="abc")
    db_session.commit()
    assert get_api_key(db_session, "abc") is not None


def test_get_api_key_matches_the_exact_case_only(db_session: Session) -> None:
    # Keys are exact byte strings: MariaDB's default collation matched RELKEY to relkey.
    assert create_api_key(db_session, valid_key="relkey", maxreq=1)
    assert get_api_key(db_session, "RELKEY") is None
    assert get_api_key(db_session, "RelKey") is None
    key = get_api_key(db_session, "relkey")
    assert key is not None and key.valid_key == "relkey"


def test_keys_differing_in_case_are_two_keys(db_session: Session) -> None:
    assert create_api_key(db_session, valid_key="relkey", maxreq=1)
    assert create_api_key(db_session, valid_key="RELKEY", maxreq=2) is True
    assert update_api_key(db_session, "RELKEY", maxreq=3)
    assert [(k.valid_key, k.maxreq) for k in list_api_keys(db_session)] == [
        ("RELKEY", 3),
        ("relkey", 1),
    ]
    assert delete_api_key(db_session, "RELKEY")
    assert [k.valid_key for k in list_api_keys(db_session)] == ["relkey"]


def test_read_valid_keys_returns_every_key(db_session: Session) -> None:
    assert read_valid_keys(db_session) == frozenset()
    for name in ("b", "a"):
        create_api_key(db_session, valid_key=name)
    assert read_valid_keys(db_session.connection()) == {"a", "b"}
