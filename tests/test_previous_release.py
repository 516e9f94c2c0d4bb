"""The previous release's web role keeps working on the newest schema (expand, then contract).

A deployment migrates the database first and replaces the web processes
afterwards, so for a while the previous release's code serves from the new
schema; a rollback, or web processes deployed before ``ichnaea migrate``
ran, give the reverse. Migrations therefore only expand (add tables,
nullable columns, indexes) in the release that starts using them, and
contract (drop or rename what the old code reads) one release later; see
``migrations/README.md``.

"The previous release" is found with git, never named: the commit just
before the newest file of ``migrations/versions/`` (the Alembic head) was
added, whose code knows only the migration before it. (With the newest
migration not committed yet, it is ``HEAD``.) That commit's tree is
extracted into a temporary directory with the current build's compiled
kernels (or, when the kernel sources differ, kernels built there), and its
``ichnaea`` commands run as subprocesses with ``PYTHONPATH`` set to it.

Each direction, on MariaDB + the Redis server and on SQLite + the embedded
Redis:

* **previous web on the head schema**: a fresh database migrated to head by
  the current code, taught an API key and stations by the current code
  (``ichnaea apikey create``, ``ichnaea replay --process``); then the old
  ``ichnaea web`` must answer ``/__heartbeat__``, geolocate by Wi-Fi, cell
  and Bluetooth, country and geosubmit, and the current worker must learn
  what the old web queued.
* **current web on the previous schema**: the same with the roles swapped,
  the database migrated only to the previous revision.

The history must be complete: a shallow clone fails under ``CI=true`` with
a message saying so, and skips elsewhere.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL

import ichnaea._fast as kernels
from ichnaea.migrate import alembic_config
from ichnaea.repositories.session import create_engine
from tests._support import in_ci
from tests.fixtures_app import TEST_GEOIP
from tests.fixtures_db import _database_url, _drop_database, _recreate_database, db_prefix
from tests.test_end_to_end import free_port
from tests.test_pipeline_end_to_end import stop, wait_until_up

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
KEY = "prevrelease"
LAT, LON = 51.5, -0.1
# Same 5th hex digit: all Wi-Fi rows land in wifi_shard_c.
WIFI = ["a0b1c2d3e4f5", "a0b1c2d3e4f6", "a0b1c2d3e4f7"]
BLUE = ["b0b1c2d3e4f1", "b0b1c2d3e4f2", "b0b1c2d3e4f3"]
CELL = {"radioType": "lte", "mobileCountryCode": 234, "mobileNetworkCode": 30,
        "locationAreaCode": 2, "cellId": 1234}  # fmt: skip


@dataclass(frozen=True)
class Release:
    """One code tree and the schema revision it was written for."""

    name: str
    tree: Path
    revision: str


@dataclass(frozen=True)
class Releases:
    current: Release
    previous: Release
    commit: str


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)


def history_missing(message: str) -> None:
    if in_ci():
        pytest.fail(f"{message} (CI=true: clone with full history, e.g. fetch-depth: 0)")
    pytest.skip(message)


def newest_migration() -> tuple[str, str, Path]:
    """(head revision, its down revision, its file): the newest migration, from Alembic."""
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_revision(script.get_current_head())
    assert head is not None and head.path is not None
    down = head.down_revision
    if not isinstance(down, str):
        pytest.fail(f"head {head.revision} has no single previous revision ({down!r})")
    return head.revision, down, Path(head.path)


def previous_commit(newest_file: Path) -> str:
    """The commit just before ``newest_file`` was added (``HEAD`` while it is uncommitted)."""
    if git("rev-parse", "--git-dir").returncode != 0:
        history_missing(f"{ROOT} is not a git checkout: the previous release cannot be found")
    if git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        history_missing("the git history is shallow: the previous release cannot be found")
    relative = newest_file.relative_to(ROOT).as_posix()
    added = git("log", "--diff-filter=A", "--format=%H", "-n", "1", "--", relative).stdout.strip()
    commit = f"{added}^" if added else "HEAD"
    resolved = git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}")
    if resolved.returncode != 0:
        history_missing(f"commit {commit} (before {relative} was added) is not in the history")
    return resolved.stdout.strip()


def extract(commit: str, into: Path) -> None:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit], capture_output=True, check=True
    )
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")


def give_kernels(commit: str, tree: Path) -> None:
    """Copy the current build's kernels when their sources are unchanged, else build them."""
    built = Path(kernels.__file__).parent
    unchanged = git("diff", "--quiet", commit, "--", "ichnaea/_fast").returncode == 0
    if unchanged:
        for library in built.glob("*.so"):
            shutil.copy2(library, tree / "ichnaea" / "_fast" / library.name)
        return
    result = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace"],
        cwd=tree,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"building the previous release's kernels:\n{result.stderr}"


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Releases:
    head, down, newest_file = newest_migration()
    commit = previous_commit(newest_file)
    tree = tmp_path_factory.mktemp("previous-release")
    extract(commit, tree)
    versions = [path.name for path in (tree / "migrations" / "versions").glob("*.py")]
    assert newest_file.name not in versions, f"{commit} already has {newest_file.name}"
    assert any(down in name for name in versions), f"{commit} lacks migration {down}"
    give_kernels(commit, tree)
    previous = Release("previous", tree, down)
    probe = subprocess.run(
        [sys.executable, "-c", "import ichnaea._fast, ichnaea; print(ichnaea.__file__)"],
        env=role_env(previous, {}),
        cwd=tree,
        capture_output=True,
        text=True,
    )
    assert probe.stdout.startswith(str(tree)), f"the old tree is not imported: {probe}"
    return Releases(Release("current", ROOT, head), previous, commit)


@dataclass(frozen=True)
class Storage:
    db_url: str
    redis_url: str


@pytest.fixture(params=[pytest.param("mysql", marks=pytest.mark.mysql), "sqlite"])
def storage(request: pytest.FixtureRequest, tmp_path: Path, worker_id: str) -> Iterator[Storage]:
    """A database with no tables and an empty Redis database, MariaDB or SQLite."""
    if request.param == "mysql":
        server: URL = request.getfixturevalue("mysql_server_url")
        name = f"{db_prefix()}_{worker_id}_release"
        _recreate_database(server, name)
        found = Storage(_database_url(server, name), request.getfixturevalue("redis_server_url"))
    else:
        sqlite = f"sqlite:///{tmp_path / 'release.sqlite'}"
        found = Storage(sqlite, request.getfixturevalue("embedded_redis_url"))
    client = redis.Redis.from_url(found.redis_url)
    client.flushdb()
    try:
        yield found
    finally:
        client.flushdb()
        client.close()
        if request.param == "mysql":
            _drop_database(server, name)


def migrate(db_url: str, revision: str) -> None:
    """Run the current code's migrations up to ``revision``."""
    engine = create_engine(db_url, pooled=False)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), revision)
    finally:
        engine.dispose()


def role_env(release: Release, storage: dict[str, str], **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DB_", "REDIS_", "GEOIP_", "ICHNAEA_"))
    }
    env.update(PYTHONPATH=str(release.tree), GEOIP_PATH=str(TEST_GEOIP), **storage, **extra)
    return env


def storage_env(storage: Storage, data_dir: Path) -> dict[str, str]:
    return {
        "DB_READONLY_URI": storage.db_url,
        "DB_READWRITE_URI": storage.db_url,
        "REDIS_URI": storage.redis_url,
        "ICHNAEA_DATA_DIR": str(data_dir),
    }


def run_ichnaea(release: Release, env: dict[str, str], *args: str) -> str:
    """Run one ``ichnaea`` command of ``release`` to completion; return its output."""
    result = subprocess.run(
        [sys.executable, "-m", "ichnaea", *args],
        env=role_env(release, env),
        cwd=release.tree,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{release.name}: ichnaea {' '.join(args)}:\n{output}"
    return output


def reports() -> list[dict[str, Any]]:
    return [
        {
            "timestamp": 1_700_000_000_000 + i,
            "position": {"latitude": LAT + i * 1e-5, "longitude": LON, "accuracy": 10},
            "wifiAccessPoints": [{"macAddress": mac, "signalStrength": -70} for mac in WIFI],
            "bluetoothBeacons": [{"macAddress": mac, "signalStrength": -70} for mac in BLUE],
            "cellTowers": [CELL],
        }
        for i in range(5)
    ]


def teach(release: Release, env: dict[str, str], tmp_path: Path) -> None:
    """An API key and stations, written by ``release``'s own commands."""
    run_ichnaea(release, env, "apikey", "create", KEY, "--maxreq", "0")
    archive = tmp_path / f"teach-{release.name}" / "reports.json.gz"
    archive.parent.mkdir()
    archive.write_bytes(gzip.compress(json.dumps({"items": reports()}).encode()))
    output = run_ichnaea(release, env, "replay", str(archive.parent), "--process")
    assert "replayed 5 reports" in output, output


def wifi_samples(db_url: str) -> int:
    engine = create_engine(db_url, pooled=False)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT SUM(samples) FROM wifi_shard_c")).scalar_one())
    finally:
        engine.dispose()


def assert_serves(url: str, revision: str) -> None:
    """Heartbeat, geolocate by each network kind, country and geosubmit all answer."""
    heartbeat = httpx.get(f"{url}/__heartbeat__", timeout=10)
    assert heartbeat.status_code == 200, heartbeat.text
    assert heartbeat.json()["database"]["alembic_version"] == revision
    queries = {
        "wifi": {"wifiAccessPoints": [{"macAddress": mac} for mac in WIFI]},
        "cell": {"cellTowers": [CELL]},
        "bluetooth": {"bluetoothBeacons": [{"macAddress": mac} for mac in BLUE]},
    }
    with httpx.Client(base_url=url, timeout=10) as client:
        for kind, query in queries.items():
            answer = client.post(f"/v1/geolocate?key={KEY}", json={**query, "considerIp": False})
            assert answer.status_code == 200, f"{kind}: {answer.text}"
            location = answer.json()["location"]
            assert location["lat"] == pytest.approx(LAT, abs=1e-3), kind
            assert location["lng"] == pytest.approx(LON, abs=1e-3), kind
        country = client.post(f"/v1/country?key={KEY}", json=queries["wifi"])
        assert country.status_code == 200, country.text
        assert country.json()["country_code"] == "GB"
        submitted = client.post(f"/v2/geosubmit?key={KEY}", json={"items": reports()[:1]})
        assert submitted.status_code == 200, submitted.text


def run_web_and_check(
    server: Release, teacher: Release, storage: Storage, revision: str, tmp_path: Path
) -> None:
    env = storage_env(storage, tmp_path / "data")
    migrate(storage.db_url, revision)
    teach(teacher, env, tmp_path)
    taught = wifi_samples(storage.db_url)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / f"web-{server.name}.log"
    with log.open("wb") as out:
        web = subprocess.Popen(
            [sys.executable, "-m", "ichnaea", "web", "--port", str(port), "--processes", "1"],
            env=role_env(server, env),
            cwd=server.tree,
            stdout=out,
            stderr=out,
        )
    try:
        wait_until_up(url, web, log)
        assert_serves(url, revision)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\n{server.name} web log (tail):\n{log.read_text()[-2000:]}"
        ) from exc
    finally:
        stop(web)
    # What this web queued, the other release's worker learns.
    run_ichnaea(teacher, env, "process", "--quiet")
    assert wifi_samples(storage.db_url) == taught + len(WIFI), log.read_text()


def test_previous_web_serves_from_the_head_schema(
    releases: Releases, storage: Storage, tmp_path: Path
) -> None:
    run_web_and_check(
        releases.previous, releases.current, storage, releases.current.revision, tmp_path
    )


def test_current_web_serves_from_the_previous_schema(
    releases: Releases, storage: Storage, tmp_path: Path
) -> None:
    """The window between deploying the code and running ``ichnaea migrate``."""
    run_web_and_check(
        releases.current, releases.previous, storage, releases.previous.revision, tmp_path
    )
