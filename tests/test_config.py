import re
from ipaddress import ip_address
from pathlib import Path

import pytest

from ichnaea.config import ConfigError, DbUser, cluster_nodes, load_settings, read_env_file


def test_defaults_are_embedded(tmp_path: Path) -> None:
    settings = load_settings({"ICHNAEA_DATA_DIR": str(tmp_path)})
    assert settings.db_readwrite_url == f"sqlite:///{tmp_path}/ichnaea.sqlite"
    assert settings.db_readonly_url == settings.db_ddl_url == settings.db_readwrite_url
    assert settings.db_embedded and settings.redis_embedded
    assert settings.geoip_path is None
    assert settings.asset_bucket == f"file://{tmp_path}/assets"
    assert len(settings.embedded_defaults()) == 4
    assert settings.web_processes >= 1 and settings.worker_processes >= 1


def test_pymysql_urls_are_pointed_at_mysqlclient() -> None:
    settings = load_settings(
        {
            "DB_READONLY_URI": "mysql+pymysql://ro:pw@db:3306/location",
            "DB_READWRITE_URI": "mysql://rw:pw@db:3306/location",
        }
    )
    assert settings.db_readonly_url == "mysql+mysqldb://ro:pw@db:3306/location"
    assert settings.db_readwrite_url == "mysql+mysqldb://rw:pw@db:3306/location"
    # No DDL URI given: migrations use the read-write one.
    assert settings.db_ddl_url == settings.db_readwrite_url
    assert not settings.db_embedded


def test_database_parts_with_one_user() -> None:
    settings = load_settings(
        {"DB_HOST": "db", "DB_USER": "loc", "DB_PASSWORD": "p@ss word", "DB_PORT": "3307"}
    )
    expected = "mysql+mysqldb://loc:p%40ss+word@db:3307/location?charset=utf8mb4"
    assert settings.db_readonly_url == settings.db_readwrite_url == expected
    assert settings.db_readonly_user is None


def test_database_parts_with_separate_users() -> None:
    settings = load_settings(
        {
            "DB_HOST": "db",
            "DB_NAME": "geo",
            "DB_RO_USER": "reader",
            "DB_RO_PWD": "r",
            "DB_RW_USER": "writer",
            "DB_RW_PWD": "w",
            "DB_DDL_USER": "admin",
            "DB_DDL_PWD": "a",
        }
    )
    assert settings.db_readonly_url.startswith("mysql+mysqldb://reader:r@db:3306/geo")
    assert settings.db_readwrite_url.startswith("mysql+mysqldb://writer:w@db:3306/geo")
    assert settings.db_ddl_url.startswith("mysql+mysqldb://admin:a@db:3306/geo")
    assert settings.db_readonly_user == DbUser("reader", "r")
    assert settings.db_readwrite_user == DbUser("writer", "w")


def test_redis_from_host_and_port() -> None:
    settings = load_settings({"REDIS_HOST": "cache", "REDIS_PORT": "6380"})
    assert settings.redis_url == "redis://cache:6380/0"
    assert not settings.redis_embedded


def test_redis_cluster_from_uri_or_node_list() -> None:
    by_uri = load_settings({"REDIS_URI": "redis+cluster://:secret@a:7000,b:7001,[::1]:7002"})
    assert by_uri.redis_cluster
    assert cluster_nodes(str(by_uri.redis_url)) == [("a", 7000), ("b", 7001), ("::1", 7002)]
    by_nodes = load_settings({"REDIS_CLUSTER_NODES": "a:7000, b:7001"})
    assert by_nodes.redis_url == "redis+cluster://a:7000,b:7001"
    assert not load_settings({"REDIS_URI": "redis://a:6379/0"}).redis_cluster


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REDIS_URI": "redis+cluster://a:7000,b"}, "REDIS_URI: 'b' is not host:port"),
        ({"REDIS_CLUSTER_NODES": "a:x"}, "REDIS_CLUSTER_NODES: 'a:x' is not host:port"),
        ({"REDIS_URI": "redis+cluster://a:7000/3"}, "only database 0"),
        ({"REDIS_URI": "redis://a", "REDIS_CLUSTER_NODES": "a:1"}, "set one, not both"),
        ({"REDIS_URI": "cluster://a:1"}, "redis+cluster://"),
    ],
)
def test_bad_redis_cluster_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(env)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"REDIS_PORT": "x", "REDIS_HOST": "h"}, "REDIS_PORT"),
        ({"REDIS_URI": "http://cache"}, "REDIS_URI"),
        ({"DB_READWRITE_URI": "postgres://x/y"}, "DB_READWRITE_URI"),
        ({"DB_READONLY_URI": "nonsense"}, "DB_READONLY_URI"),
        ({"DB_HOST": "db", "DB_RO_USER": "r"}, "DB_RW_USER"),
        ({"WORKER_PROCESSES": "0"}, "WORKER_PROCESSES"),
        ({"LOGGING_LEVEL": "LOUD"}, "LOGGING_LEVEL"),
        ({"LOCAL_DEV_ENV": "maybe"}, "LOCAL_DEV_ENV"),
        ({"GEOIP_PATH": "/nonexistent/City.mmdb"}, "GEOIP_PATH"),
        ({"STATSD_PORT": "-1"}, "STATSD_PORT"),
        ({"MAP_BASE_URL": "https://tiles.example.org/base.png"}, "MAP_BASE_URL"),
        ({"MAP_BASE_URL": "ftp://tiles.example.org/{z}/{x}/{y}.png"}, "MAP_BASE_URL"),
    ],
)
def test_bad_value_is_an_error_naming_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=f"^{variable}:"):
        load_settings(env)


def test_worker_concurrency_alias_of_the_original_is_accepted() -> None:
    assert load_settings({"CELERY_WORKER_CONCURRENCY": "3"}).worker_processes == 3
    assert (
        load_settings({"WORKER_PROCESSES": "2", "CELERY_WORKER_CONCURRENCY": "3"}).worker_processes
        == 2
    )


def test_map_token_under_either_name_quirk_22_both_accepted() -> None:
    """The docs said MAP_TOKEN, the code read MAPBOX_TOKEN: both work here."""
    assert load_settings({"MAP_TOKEN": "a"}).map_token == "a"
    assert load_settings({"MAPBOX_TOKEN": "b"}).map_token == "b"
    assert load_settings({}).map_token == ""


def test_env_file_is_read_like_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_HOST", "host-value")
    env_file = tmp_path / "ichnaea.env"
    env_file.write_text(
        '# comment\n\nREDIS_URI=redis://cache:6379/1\nMAP_TOKEN="quoted"\nFROM_HOST\nUNSET_ONE\n'
    )
    values = read_env_file(env_file)
    # Docker keeps quotes literally and copies bare names from the environment.
    assert values == {
        "REDIS_URI": "redis://cache:6379/1",
        "MAP_TOKEN": '"quoted"',
        "FROM_HOST": "host-value",
    }


def test_environment_wins_over_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / "ichnaea.env"
    env_file.write_text("PORT=9000\nSTATSD_HOST=stats\n")
    settings = load_settings({"PORT": "9100"}, env_file=env_file)
    assert settings.port == 9100
    assert settings.statsd_host == "stats"


def test_env_file_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    env_file = tmp_path / "bad.env"
    env_file.write_text("PORT=1\nthis is not a setting\n")
    with pytest.raises(ConfigError, match=r"bad\.env:2: expected KEY=value"):
        read_env_file(env_file)


def test_missing_env_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings({}, env_file=tmp_path / "missing.env")


def test_forwarded_allow_ips_defaults_to_the_loopback_addresses() -> None:
    trusted = load_settings({}).forwarded_allow_ips
    assert ip_address("127.0.0.1") in trusted and ip_address("::1") in trusted
    assert ip_address("127.0.0.2") not in trusted and ip_address("10.0.0.1") not in trusted


def test_forwarded_allow_ips_takes_addresses_networks_and_star() -> None:
    env = {"FORWARDED_ALLOW_IPS": " 10.0.0.0/8, 192.168.1.1 ,2001:db8::/32"}
    trusted = load_settings(env).forwarded_allow_ips
    inside = ("10.255.0.1", "192.168.1.1", "2001:db8::7")
    outside = ("192.168.1.2", "127.0.0.1", "2001:db9::1")
    assert all(ip_address(a) in trusted for a in inside)
    assert not any(ip_address(a) in trusted for a in outside)
    everyone = load_settings({"FORWARDED_ALLOW_IPS": "*"}).forwarded_allow_ips
    assert ip_address("203.0.113.7") in everyone and None in everyone


@pytest.mark.parametrize("value", ["proxy.example", "10.0.0.1/8", "10.0.0.0/33", "127.0.0.1;::1"])
def test_bad_forwarded_allow_ips_is_an_error_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match=f"^FORWARDED_ALLOW_IPS: .*{value.split(';')[0]}"):
        load_settings({"FORWARDED_ALLOW_IPS": value})


def test_keep_alive_outlasts_the_usual_load_balancer_idle_timeout() -> None:
    assert load_settings({}).keep_alive_s == 75  # AWS ALB and nginx close at 60 s
    assert load_settings({"KEEP_ALIVE_S": "5"}).keep_alive_s == 5
    with pytest.raises(ConfigError, match="KEEP_ALIVE_S"):
        load_settings({"KEEP_ALIVE_S": "0"})


def test_embedded_asset_directory_only_beside_the_embedded_database(tmp_path: Path) -> None:
    data = {"ICHNAEA_DATA_DIR": str(tmp_path)}
    assert load_settings(data).asset_bucket == f"file://{tmp_path}/assets"
    # Set but empty: no store, as before the website existed.
    assert load_settings({**data, "ASSET_BUCKET": ""}).asset_bucket == ""
    assert load_settings({**data, "ASSET_BUCKET": "bucket"}).asset_bucket == "bucket"
    mysql = {**data, "DB_READWRITE_URI": "mysql://root@db/location"}
    assert load_settings(mysql).asset_bucket == ""
    assert not any("assets" in line for line in load_settings(mysql).embedded_defaults())


def test_map_base_layer_is_off_by_default_and_takes_a_tile_template() -> None:
    assert load_settings({}).map_base_url == ""
    settings = load_settings(
        {
            "MAP_BASE_URL": "https://tiles.example.org/{z}/{x}/{y}.png",
            "MAP_BASE_ATTRIBUTION": "&copy; Example",
        }
    )
    assert settings.map_base_url == "https://tiles.example.org/{z}/{x}/{y}.png"
    assert settings.map_base_attribution == "&copy; Example"
