from collections.abc import Callable, Iterator

import pytest
from click.testing import CliRunner, Result
from starlette.testclient import TestClient

from ichnaea.__main__ import cli
from ichnaea.api.context import STATE_KEY as API_STATE_KEY
from ichnaea.api.keys import ApiKeyCache
from ichnaea.config import Settings
from ichnaea.web.app import create_app
from tests.fixtures_app import PROXY_PEER, Backend


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


class LiveApp:
    """A web app of the backend whose key cache runs on a clock the test moves."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.now = 1000.0
        client.app_state[API_STATE_KEY].api_keys = ApiKeyCache(clock=lambda: self.now)

    def locate(self, key: str) -> int:
        headers = {"X-Forwarded-For": "81.2.69.192"}
        response = self.client.post(f"/v1/geolocate?key={key}", json={}, headers=headers)
        return response.status_code


@pytest.fixture
def live_app(app_settings: Settings) -> Iterator[LiveApp]:
    with TestClient(create_app(app_settings), client=PROXY_PEER) as client:
        yield LiveApp(client)


def test_created_key_works_within_a_second_after_being_refused(
    run: Callable[..., Result], live_app: LiveApp
) -> None:
    assert live_app.locate("test-live-key") == 400  # unknown, and cached as unknown
    assert run("create", "test-live-key", "--maxreq", "0").exit_code == 0
    live_app.now += 1.0
    assert live_app.locate("test-live-key") == 200


def test_updated_limit_applies_within_a_second(
    run: Callable[..., Result], live_app: LiveApp
) -> None:
    assert run("create", "test-live-key", "--maxreq", "0").exit_code == 0
    assert live_app.locate("test-live-key") == 200
    assert live_app.locate("test-live-key") == 200
    assert run("update", "test-live-key", "--maxreq", "1").exit_code == 0
    live_app.now += 1.0
    assert live_app.locate("test-live-key") == 403  # the third request of the day


def test_deleted_key_is_refused_within_a_second(
    run: Callable[..., Result], live_app: LiveApp
) -> None:
    assert run("create", "test-live-key").exit_code == 0
    assert live_app.locate("test-live-key") == 200
    assert run("delete", "test-live-key").exit_code == 0
    live_app.now += 1.0
    assert live_app.locate("test-live-key") == 400


def test_create_help_and_key_state_the_default_daily_limit(run: Callable[..., Result]) -> None:
    helptext = run("create", "--help").output
    assert "--maxreq" in helptext and "default: 100" in helptext
    assert run("create", "test-default-limit").exit_code == 0
    assert "maxreq                      : 100" in run("show", "test-default-limit").output


def test_change_stands_with_a_warning_when_redis_is_down(backend: Backend, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {
        "DB_READWRITE_URI": backend.db_url,
        "REDIS_URI": "redis://127.0.0.1:1/0",
        "ICHNAEA_DATA_DIR": str(tmp_path),
    }
    runner = CliRunner()
    try:
        created = runner.invoke(cli, ["apikey", "create", "test-no-redis"], env=env)
        assert created.exit_code == 0, created.output
        assert "Created API key: 'test-no-redis'" in created.output
        assert "warning: Redis unreachable" in created.output
        assert "when their cached keys expire" in created.output
    finally:
        runner.invoke(cli, ["apikey", "delete", "test-no-redis"], env=env)
