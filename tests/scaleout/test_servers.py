"""The scale-out launchers start real servers that work, and leave nothing behind."""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import sqlalchemy
from redis.cluster import ClusterNode, RedisCluster

from ichnaea.config import cluster_nodes
from tests._support import backend_unavailable
from tests.scaleout.servers import (
    MariaDBPrimaryReplica,
    RedisClusterServers,
    ServerStartError,
    missing_binaries,
)

pytestmark = [pytest.mark.slow, pytest.mark.scaleout]

REPLICA_TIMEOUT_S = 30.0


def require(binaries: Sequence[str]) -> None:
    missing = missing_binaries(*binaries)
    if missing:
        backend_unavailable(f"not installed: {', '.join(missing)}")


def listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, port)) == 0


def processes_in(path: Path) -> list[int]:
    """Processes working in ``path`` or naming it on their command line.

    Servers change into their data directory, which the launchers put under
    ``path``; the working directory finds redis-server, which rewrites its
    command line to ``redis-server host:port [cluster]``.
    """
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = (proc / "cwd").readlink()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue  # exited meanwhile
        if cwd.is_relative_to(path) or str(path).encode() in cmdline:
            found.append(int(proc.name))
    return found


def test_redis_cluster_spreads_keys_over_every_master(tmp_path: Path) -> None:
    require(RedisClusterServers.BINARIES)
    with RedisClusterServers(tmp_path, masters=3) as cluster:
        assert len(processes_in(tmp_path)) == 3
        nodes = cluster.nodes
        assert cluster_nodes(cluster.url) == nodes
        startup = [ClusterNode(host, port) for host, port in nodes]  # type: ignore[no-untyped-call]
        client = RedisCluster(startup_nodes=startup)
        try:
            for number in range(100):
                client.set(f"key:{number}", number)
            assert client.get("key:42") == b"42"
        finally:
            client.close()
        sizes = []
        for index in range(3):
            with cluster.node_client(index) as node:
                sizes.append(node.dbsize())
        assert sum(sizes) == 100
        assert min(sizes) > 0, sizes

        cluster.flushall()
        for index in range(3):
            with cluster.node_client(index) as node:
                assert node.dbsize() == 0

    assert not [port for host, port in nodes if listening(host, port)]
    assert processes_in(tmp_path) == []


def test_redis_cluster_kill_stops_one_node(tmp_path: Path) -> None:
    require(RedisClusterServers.BINARIES)
    with RedisClusterServers(tmp_path, masters=3) as cluster:
        cluster.kill(1)
        assert [listening(host, port) for host, port in cluster.nodes] == [True, False, True]
        assert len(processes_in(tmp_path)) == 2
        cluster.stop()
        cluster.stop()  # idempotent
        assert processes_in(tmp_path) == []


def test_redis_cluster_start_failure_stops_started_nodes(tmp_path: Path) -> None:
    require(RedisClusterServers.BINARIES)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))  # bound, not listening: a client is refused at once
        busy_port = taken.getsockname()[1]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free_port = probe.getsockname()[1]
        cluster = RedisClusterServers(tmp_path, masters=2, ports=[free_port, busy_port])
        with pytest.raises(ServerStartError, match=r"(?s)redis node 1 exited.*in use"):
            cluster.start()
    assert not listening("127.0.0.1", free_port)
    assert processes_in(tmp_path) == []


def rows_on(engine: sqlalchemy.Engine) -> int | None:
    """The rows of scaleout.items, or None while the table is not there yet."""
    try:
        with engine.connect() as connection:  # a new transaction: a fresh snapshot
            count: int = connection.exec_driver_sql(
                "SELECT COUNT(*) FROM scaleout.items"
            ).scalar_one()
            return count
    except sqlalchemy.exc.ProgrammingError:
        return None


def wait_for_rows(engine: sqlalchemy.Engine, expected: int) -> None:
    deadline = time.monotonic() + REPLICA_TIMEOUT_S
    while (seen := rows_on(engine)) != expected:
        assert time.monotonic() < deadline, f"the replica has {seen} rows, not {expected}"
        time.sleep(0.05)


def insert(engine: sqlalchemy.Engine, numbers: range) -> None:
    with engine.begin() as connection:
        connection.execute(
            sqlalchemy.text("INSERT INTO scaleout.items (id) VALUES (:id)"),
            [{"id": number} for number in numbers],
        )


def test_mariadb_replica_follows_primary_until_replication_stops(tmp_path: Path) -> None:
    require(MariaDBPrimaryReplica.BINARIES)
    with MariaDBPrimaryReplica(tmp_path) as pair:
        assert len(processes_in(tmp_path)) == 2
        ports = [pair.primary_port, pair.replica_port]
        primary = sqlalchemy.create_engine(pair.primary_url)
        replica = sqlalchemy.create_engine(pair.url("mysql", replica=True))
        try:
            with primary.begin() as connection:
                connection.exec_driver_sql("CREATE DATABASE scaleout CHARACTER SET utf8mb4")
                connection.exec_driver_sql("CREATE TABLE scaleout.items (id INT PRIMARY KEY)")
            insert(primary, range(10))
            wait_for_rows(replica, 10)
            with replica.connect() as connection:
                assert connection.exec_driver_sql("SELECT @@read_only").scalar_one() == 1
            assert pair.replica_lag_seconds() == 0

            pair.stop_replication()
            assert pair.replica_lag_seconds() is None
            insert(primary, range(10, 20))
            assert rows_on(primary) == 20
            assert rows_on(replica) == 10

            pair.start_replication()
            wait_for_rows(replica, 20)
            insert(primary, range(20, 30))
            pair.wait_for_replica(REPLICA_TIMEOUT_S)
            assert rows_on(replica) == 30
        finally:
            primary.dispose()
            replica.dispose()

    assert not [port for port in ports if listening("127.0.0.1", port)]
    assert processes_in(tmp_path) == []


def test_mariadb_start_failure_leaves_no_process(tmp_path: Path) -> None:
    require(MariaDBPrimaryReplica.BINARIES)
    pair = MariaDBPrimaryReplica(tmp_path, timeout_s=0.01)  # install-db takes longer
    with pytest.raises(ServerStartError, match=r"did not finish in 0\.01 s"):
        pair.start()
    assert processes_in(tmp_path) == []
    pair.stop()  # idempotent after a failed start
