"""Several hosts on real engines: a Redis Cluster, a MariaDB primary and replica, two hosts.

The test builds, on this machine, what an operator runs on several:

* a Redis Cluster of three masters and a MariaDB primary with a replica
  (binlog replication by GTID), on two addresses of a bridge it creates;
* two hosts, each a network namespace with its own address on the
  bridge, each running ``ichnaea web`` (reading only the replica),
  ``ichnaea worker`` (writing to the primary) and ``ichnaea scheduler``
  (one of the two leads).

Then, with reports posted to both web hosts over HTTP:

1. throughput with one worker host, then with two (the same number of
   reports queued before the workers start);
2. a station learned by the pipeline is answered by both web hosts, from
   their replica-built index, within the 2 s freshness bound;
3. mid-ingest, the host holding the scheduler's leadership is killed
   (every process, SIGKILL) and the other host's route to Redis is cut
   for 10 s; the survivor finishes the work and takes the leadership;
4. after every phase the station tables hold exactly the observations
   submitted: the sum of samples, none lost, none twice;
5. with the replica's replication stopped, then the replica gone, locate
   still answers from the index and ``/__heartbeat__`` says what is wrong.

Sizes: ``ICHNAEA_SCALEOUT_REPORTS`` reports per phase (default 300, about
two minutes in all on a 2-core machine; CI runs the default). Needs root.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from ichnaea.broker import keyspace
from ichnaea.broker.client import connect_url, decoded
from ichnaea.models.station import WIFI_SHARDS
from tests._support import backend_unavailable
from tests.fixtures_app import TEST_GEOIP
from tests.scaleout.hosts import Host, Network, unavailable, wait_for
from tests.scaleout.servers import MariaDBPrimaryReplica, RedisClusterServers, missing_binaries

pytestmark = [pytest.mark.slow, pytest.mark.scaleout]

REPORTS = int(os.environ.get("ICHNAEA_SCALEOUT_REPORTS", "300"))
WIFIS = 5  # per report, all valid: each is one observation
PORT = 8000
KEY = "scaleout"
DRAIN_TIMEOUT_S = 240.0
FRESHNESS_S = 2.0
CUT_S = 10.0


@dataclass
class Cluster:
    network: Network
    redis: RedisClusterServers
    mariadb: MariaDBPrimaryReplica
    env: dict[str, str]

    @property
    def hosts(self) -> list[Host]:
        return self.network.hosts

    def role_env(self, host: Host) -> dict[str, str]:
        return {**self.env, "ICHNAEA_DATA_DIR": str(host.data_dir)}


def say(text: str) -> None:
    """Progress and figures, shown with ``-s`` and in the CI log on failure."""
    print(f"[multihost] {text}", file=sys.stderr, flush=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = unavailable()
    missing = missing_binaries(*RedisClusterServers.BINARIES, *MariaDBPrimaryReplica.BINARIES)
    if reason or missing:
        backend_unavailable(reason or f"not installed: {', '.join(missing)}")
    base = tmp_path_factory.mktemp("multihost")
    subnet = os.getpid() % 500
    with Network(base, subnet=subnet, service_addresses=2, hosts=2) as network:
        db_address, redis_address = network.services
        with (
            RedisClusterServers(base / "redis", 3, host=redis_address) as redis_servers,
            MariaDBPrimaryReplica(base / "mariadb", host=db_address) as mariadb,
        ):
            env = {
                key: value
                for key, value in os.environ.items()
                if not key.startswith(("DB_", "REDIS_", "GEOIP_", "ICHNAEA_"))
            }
            env.update(
                DB_READWRITE_URI=mariadb.url("location"),
                DB_READONLY_URI=mariadb.url("location", replica=True),
                DB_DDL_URI=mariadb.url("location"),
                REDIS_URI=redis_servers.url,
                GEOIP_PATH=str(TEST_GEOIP),
                HOST="0.0.0.0",
                PORT=str(PORT),
                WEB_PROCESSES="1",
                WORKER_PROCESSES="1",
                QUEUE_LEASE_S="5",
                # Small station batches: many in flight when a host is killed.
                STATION_BATCH="50",
                LOGGING_LEVEL="WARNING",
                REQUEST_LOG="false",
            )
            setup = {**env, "ICHNAEA_DATA_DIR": str(base / "setup")}
            for args in (["migrate"], ["apikey", "create", KEY, "--maxreq", "0"]):
                done = subprocess_run(args, setup)
                assert done.returncode == 0, done.stdout + done.stderr
            mariadb.wait_for_replica()
            yield Cluster(network, redis_servers, mariadb, env)


def subprocess_run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ichnaea", *args], env=env, capture_output=True, text=True
    )


def url(host: Host) -> str:
    return f"http://{host.address}:{PORT}"


def make_reports(rng: random.Random, count: int, phase: int) -> list[dict[str, Any]]:
    """``count`` reports around 50 places in Hesse; MACs of this phase only (none is blocked).

    On land: the pipeline keeps only observations inside a region.
    """
    reports = []
    for i in range(count):
        place = i % 50
        lat, lon = 50.0 + phase * 0.1 + place * 0.002, 9.0 + place * 0.002
        macs = [f"0a{phase:02x}{place:02x}{n:06x}"[:12] for n in range(WIFIS)]
        reports.append(
            {
                "position": {
                    "latitude": lat + rng.uniform(-2e-5, 2e-5),
                    "longitude": lon + rng.uniform(-2e-5, 2e-5),
                    "accuracy": 10,
                },
                "wifiAccessPoints": [
                    {"macAddress": mac, "signalStrength": -60 - n} for n, mac in enumerate(macs)
                ],
            }
        )
    return reports


def submit(hosts: list[Host], reports: list[dict[str, Any]], chunk: int = 25) -> None:
    """Post the reports in chunks, alternating between the web hosts; every post accepted."""
    with httpx.Client(timeout=30) as client:
        for n, start in enumerate(range(0, len(reports), chunk)):
            host = hosts[n % len(hosts)]
            answer = client.post(
                f"{url(host)}/v2/geosubmit?key={KEY}",
                json={"items": reports[start : start + chunk]},
            )
            assert answer.status_code == 200, (host.name, answer.text)


def samples(cluster: Cluster) -> int:
    """The sum of samples over the Wi-Fi station tables, on the primary."""
    engine = sa.create_engine(cluster.mariadb.url("location"))
    try:
        with engine.connect() as conn:
            return sum(
                int(conn.execute(sa.text(f"SELECT SUM(samples) FROM {t}")).scalar() or 0)
                for t in sorted({model.__tablename__ for model in WIFI_SHARDS.values()})
            )
    finally:
        engine.dispose()


def drain(cluster: Cluster, expected: int) -> tuple[float, float]:
    """Wait until the stations hold ``expected`` samples, none twice.

    Returns the seconds until the first new sample was stored (the workers'
    start-up, when they were just started) and the seconds from there on.
    """
    before = samples(cluster)
    first = wait_for(
        "a first sample stored",
        lambda: samples(cluster) > before or before >= expected,
        60,
        interval_s=0.05,
    )
    try:
        rest = wait_for(
            f"station samples reaching {expected}",
            lambda: samples(cluster) >= expected,
            DRAIN_TIMEOUT_S,
            interval_s=0.1,
        )
    except AssertionError as exc:
        logs = "\n".join(
            f"--- {host.name} {role}.log:\n{host.log(role)}"
            for host in cluster.hosts
            for role in ("worker", "scheduler")
        )
        raise AssertionError(f"{exc} (at {samples(cluster)})\n{logs}") from None
    assert samples(cluster) == expected  # none counted twice
    return first, rest


def start_web(cluster: Cluster, host: Host) -> None:
    host.ichnaea("web", ["web"], cluster.role_env(host))
    wait_for(
        f"{host.name} web up",
        lambda: _ok(f"{url(host)}/__lbheartbeat__"),
        60,
    )


def _ok(address: str) -> bool:
    try:
        return httpx.get(address, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def locate(host: Host, macs: list[str]) -> httpx.Response:
    return httpx.post(
        f"{url(host)}/v1/geolocate?key={KEY}",
        json={"wifiAccessPoints": [{"macAddress": m} for m in macs], "considerIp": False},
        timeout=5,
    )


def leader_pid(cluster: Cluster) -> int | None:
    client = connect_url(cluster.redis.url)
    try:
        token = client.get(keyspace.SCHEDULER_LOCK)
    finally:
        client.close()
    return int(decoded(token).split(":")[1]) if token else None


def test_two_hosts_on_a_redis_cluster_and_a_replica(cluster: Cluster) -> None:
    rng = random.Random(12)
    h1, h2 = cluster.hosts
    for host in cluster.hosts:
        start_web(cluster, host)
    submitted = 0

    # 1. One worker host, then two, on the same number of queued reports.
    figures = {}
    for phase, workers in ((1, [h1]), (2, [h1, h2])):
        reports = make_reports(rng, REPORTS, phase)
        submit(cluster.hosts, reports)
        submitted += len(reports) * WIFIS
        for host in workers:
            host.ichnaea("worker", ["worker"], cluster.role_env(host))
        start_up, seconds = drain(cluster, submitted)
        figures[len(workers)] = len(reports) * WIFIS / seconds
        say(
            f"{len(workers)} worker host(s): {len(reports) * WIFIS} observations in "
            f"{seconds:.1f} s = {figures[len(workers)]:.0f} observations/s "
            f"(from the first stored sample; the workers' start-up took {start_up:.1f} s)"
        )
        for host in workers:
            host.stop("worker")
    say(f"samples = observations submitted: {samples(cluster)} = {submitted}")
    say(f"two worker hosts / one: {figures[2] / figures[1]:.2f}")

    # 2. Freshness: a new station, learned through the pipeline, answered by both hosts.
    for host in cluster.hosts:
        host.ichnaea("worker", ["worker"], cluster.role_env(host))
    fresh = make_reports(rng, 3, 9)
    macs = [ap["macAddress"] for ap in fresh[0]["wifiAccessPoints"]]
    for host in cluster.hosts:
        assert locate(host, macs).status_code == 404
    submit([h1], fresh)
    submitted += len(fresh) * WIFIS
    drain(cluster, submitted)
    for host in cluster.hosts:

        def answers(host: Host = host) -> bool:
            return locate(host, macs).status_code == 200

        waited = wait_for(f"{host.name} answering the new station", answers, FRESHNESS_S, 0.05)
        say(f"{host.name} answered the new station {waited:.2f} s after it was stored")

    # 3. Kill the leading host mid-ingest; cut the other one's route to Redis.
    for host in cluster.hosts:
        host.ichnaea("scheduler", ["scheduler"], cluster.role_env(host))
    wait_for("a scheduler leading", lambda: leader_pid(cluster) is not None, 60)
    pids = {host.name: set(host.pids()) for host in cluster.hosts}
    leader = leader_pid(cluster)
    victim, survivor = (h1, h2) if leader in pids[h1.name] else (h2, h1)
    reports = make_reports(rng, 4 * REPORTS, 3)
    for host in cluster.hosts:
        host.stop("worker")
    submit(cluster.hosts, reports)
    submitted += len(reports) * WIFIS
    before = samples(cluster)
    for host in cluster.hosts:
        host.ichnaea("worker", ["worker"], cluster.role_env(host))
    wait_for("ingest under way", lambda: samples(cluster) > before, 60, interval_s=0.02)
    killed = victim.kill()
    say(f"killed {victim.name} ({killed} processes) at {samples(cluster) - before} samples")
    redis_address = cluster.network.services[1]
    survivor.cut(redis_address)
    time.sleep(CUT_S)
    survivor.heal(redis_address)
    say(f"{survivor.name}: route to Redis cut for {CUT_S:.0f} s, then restored")
    _, seconds = drain(cluster, submitted)
    say(f"survivor finished {seconds:.1f} s after the cut ended")
    say(f"samples = observations submitted: {samples(cluster)} = {submitted}")
    wait_for(
        "the leadership moving to the survivor",
        lambda: leader_pid(cluster) in set(survivor.pids()),
        60,
    )
    say(f"scheduler leadership moved from {victim.name} to {survivor.name}")

    # 4. A stopped, then a lost, replica: locate answers from the index.
    answer = locate(survivor, macs)
    assert answer.status_code == 200, answer.text
    cluster.mariadb.stop_replication()
    heart = httpx.get(f"{url(survivor)}/__heartbeat__", timeout=10).json()
    say(f"heartbeat with replication stopped: {heart['database']}")
    assert heart["database"]["replica"]["running"] is False
    cluster.mariadb.kill_replica()
    assert locate(survivor, macs).status_code == 200
    heart = httpx.get(f"{url(survivor)}/__heartbeat__", timeout=10).json()
    say(f"heartbeat with the replica gone: {heart['database']}")
    assert heart["database"]["up"] is False
    assert heart["station_index"]["state"] == "ready"
