from collections.abc import Callable, Iterator

import pytest
from click.testing import CliRunner, Result

from ichnaea.__main__ import cli
from tests.fixtures_app import Backend


@pytest.fixture
def run(backend: Backend, tmp_path) -> Iterator[Callable[..., Result]]:  # type: ignore[no-untyped-def]
    env = {
        "DB_READWRITE_URI": backend.db_url,
        "REDIS_URI": backend.redis_url,
        "ICHNAEA_DATA_DIR": str(tmp_path),
    }
    runner = CliRunner()
    created: list[str] = []

    def invoke(*args: str) -> Result:
        if args[:1] == ("create",) and len(args) > 1 and not args[1].startswith("-"):
            created.append(args[1])
        return runner.invoke(cli, ["apikey", *args], env=env, catch_exceptions=False)

    yield invoke
    for key in created:  # the CLI commits; leave the shared database as we found it
        runner.invoke(cli, ["apikey", "delete", key], env=env)


def test_create_show_update_delete_round_trip(run: Callable[..., Result]) -> None:
    result = run("create", "test-cli-key", "--allow-locate", "--allow-region", "--maxreq", "5")
    assert result.exit_code == 0, result.output
    assert "Created API key: 'test-cli-key'" in result.output

    shown = run("show", "test-cli-key").output
    assert "maxreq" in shown and ": 5" in shown
    assert "allow_locate                : True" in shown
    assert "store_sample_locate         : 100" in shown

    updated = run("update", "test-cli-key", "--no-allow-locate", "--fallback-name", "fb")
    assert updated.exit_code == 0, updated.output
    shown = run("show", "test-cli-key").output
    assert "allow_locate                : False" in shown
    assert "fallback_name               : fb" in shown
    # Fields not given to update keep their values.
    assert "allow_region                : True" in shown

    listed = run("list").output
    assert "test-cli-key" in listed and "api keys." in listed

    assert run("delete", "test-cli-key").exit_code == 0
    missing = run("show", "test-cli-key")
    assert missing.exit_code == 1
    assert "does not exist" in missing.output


def test_create_existing_key_fails(run: Callable[..., Result]) -> None:
    assert run("create", "test-dup-key").exit_code == 0
    again = run("create", "test-dup-key")
    assert again.exit_code == 1
    assert "exists" in again.output


def test_invalid_key_and_values_are_refused(run: Callable[..., Result]) -> None:
    assert run("create", "no spaces allowed").exit_code == 2
    assert run("create", "test-bad-sample", "--store-sample-locate", "101").exit_code == 2
    assert run("create", "test-bad-schema", "--fallback-schema", "nope/v9").exit_code == 2


def test_update_without_fields_is_a_usage_error(run: Callable[..., Result]) -> None:
    assert run("update", "whatever").exit_code == 2


def test_keys_differing_in_case_are_created_and_shown_apart(run: Callable[..., Result]) -> None:
    assert run("create", "test-relkey", "--maxreq", "1").exit_code == 0
    upper = run("create", "TEST-RELKEY", "--maxreq", "2")
    assert upper.exit_code == 0, upper.output
    assert "maxreq                      : 2" in run("show", "TEST-RELKEY").output
    assert "maxreq                      : 1" in run("show", "test-relkey").output
