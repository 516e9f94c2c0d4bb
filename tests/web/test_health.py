import json
from collections.abc import Callable
from pathlib import Path

from starlette.testclient import TestClient

from ichnaea.config import Settings
from ichnaea.web.app import create_app
from ichnaea.web.health import version_info

DOWN_DB = "mysql://root@127.0.0.1:1/location"
DOWN_REDIS = "redis://127.0.0.1:1/0"


def test_lbheartbeat_answers_ok(client: TestClient) -> None:
    for method in ("GET", "POST"):
        response = client.request(method, "/__lbheartbeat__")
        assert response.status_code == 200
        assert response.json() == {"status": "OK"}
    head = client.head("/__lbheartbeat__")
    assert head.status_code == 200 and head.content == b""


def test_heartbeat_reports_all_backends_up(client: TestClient) -> None:
    response = client.get("/__heartbeat__")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"database", "geoip", "redis"}
    assert body["database"]["up"] is True
    assert body["database"]["alembic_version"] not in ("", "unknown")
    assert body["redis"]["up"] is True
    assert body["geoip"]["up"] is True
    assert body["geoip"]["age_in_days"] >= 0
    assert body["geoip"]["version"].endswith("Z")
    for entry in body.values():
        assert isinstance(entry["time"], int) and entry["time"] >= 0
    assert "access-control-allow-origin" not in response.headers


def test_heartbeat_is_503_when_database_and_redis_are_down(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(DB_READONLY_URI=DOWN_DB, REDIS_URI=DOWN_REDIS)
    with TestClient(create_app(settings)) as client:
        response = client.get("/__heartbeat__")
        assert response.status_code == 503
        body = response.json()
        assert body["database"] == {"up": False, "time": 0, "alembic_version": "unknown"}
        assert body["redis"] == {"up": False, "time": 0}
        assert body["geoip"]["up"] is True
        # The shallow check never looks at the backends.
        assert client.get("/__lbheartbeat__").status_code == 200


def test_heartbeat_reports_missing_geoip_database(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    bad = tmp_path / "broken.mmdb"
    bad.write_bytes(b"\0" * 64)
    settings = make_settings(GEOIP_PATH=str(bad), DB_READONLY_URI=DOWN_DB, REDIS_URI=DOWN_REDIS)
    with TestClient(create_app(settings)) as client:
        body = client.get("/__heartbeat__").json()
    assert body["geoip"] == {
        "up": False,
        "time": 0,
        "age_in_days": -1,
        "version": "2020-02-26T12:17:00Z",
    }


def test_version_reads_version_json(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    info = {
        "source": "https://example.org/ichnaea",
        "version": "1.2",
        "commit": "abc",
        "build": "7",
    }
    path = tmp_path / "version.json"
    path.write_text(json.dumps(info))
    settings = make_settings(VERSION_FILE=str(path), DB_READONLY_URI=DOWN_DB, REDIS_URI=DOWN_REDIS)
    with TestClient(create_app(settings)) as client:
        response = client.get("/__version__")
    assert response.status_code == 200
    assert response.json() == info


def test_version_without_file_names_the_package_version() -> None:
    info = version_info(Path("/nonexistent/version.json"))
    assert set(info) == {"source", "version", "commit", "build"}
    assert info["version"] == __import__("ichnaea").__version__


def test_health_endpoints_refuse_other_methods_with_json_405(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(DB_READONLY_URI=DOWN_DB, REDIS_URI=DOWN_REDIS)
    with TestClient(create_app(settings)) as client:
        for method in ("DELETE", "PATCH", "PUT", "OPTIONS"):
            response = client.request(method, "/__heartbeat__")
            assert response.status_code == 405
            assert response.json()["error"]["code"] == 405
            assert "access-control-allow-origin" not in response.headers


def test_contribute_json_is_served_on_get_head_post_and_refused_otherwise(
    make_settings: Callable[..., Settings],
) -> None:
    # Spec 1.1: /contribute.json serves GET, HEAD and POST like /__version__;
    # every other method is the JSON 405, and no CORS headers either way.
    settings = make_settings(DB_READONLY_URI=DOWN_DB, REDIS_URI=DOWN_REDIS)
    with TestClient(create_app(settings)) as client:
        got = client.get("/contribute.json")
        posted = client.post("/contribute.json")
        head = client.head("/contribute.json")
        refused = {m: client.request(m, "/contribute.json") for m in ("DELETE", "PATCH", "PUT")}
    assert got.status_code == posted.status_code == head.status_code == 200
    assert got.headers["content-type"] == "application/json"
    info = got.json()
    assert info["name"] == "Ichnaea"
    assert {"description", "repository", "participate", "keywords"} <= set(info)
    assert posted.content == got.content
    assert head.content == b""
    assert head.headers["content-length"] == str(len(got.content))
    assert "access-control-allow-origin" not in got.headers
    for method, response in refused.items():
        assert response.status_code == 405, method
        assert response.json()["error"]["code"] == 405


def test_unknown_path_is_a_json_404(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(DB_READONLY_URI=DOWN_DB, REDIS_URI=DOWN_REDIS)
    with TestClient(create_app(settings)) as client:
        response = client.get("/v1/nothing-here")
        trailing = client.get("/__lbheartbeat__/")
    assert response.status_code == 404
    assert response.json()["error"]["errors"][0]["reason"] == "notFound"
    assert trailing.status_code == 404
