"""Real server groups that a test starts and stops itself: a Redis Cluster and a
MariaDB primary with one replica.

Each launcher is a context manager over child processes of the test process.
Everything lives under the ``base_dir`` it is given (data, config, logs, the
MariaDB sockets) and listens on ports picked by binding port 0, so tests may
run in parallel under pytest-xdist. ``start()`` stops whatever it has started
when any step fails, ``stop()`` is idempotent, and servers are started through
``setpriv --pdeathsig KILL`` (when present) so that they die with the test
process even if it is killed outright. The death signal follows the *thread*
that started them: start servers from a thread that outlives them (pytest's
main thread does).

The Redis Cluster is formed by hand rather than by ``redis-cli --cluster
create``, so the layout is always the same: node ``i`` of ``n`` owns slots
``i*16384//n`` to ``(i+1)*16384//n - 1``, takes config epoch ``i+1`` (no epoch
collisions to resolve) and meets node 0 over an explicitly chosen bus port
(the default ``port + 10000`` overflows for ephemeral ports above 55535).

The MariaDB pair is two ``mariadb-install-db`` data directories and two
``mariadbd --no-defaults`` servers. Users are created on each server with
``sql_log_bin=0`` so nothing but the tests' own writes enters the primary's
binary log; the replica then follows that log from its start by GTID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

REDIS_SLOTS = 16384
STOP_TIMEOUT_S = 15.0
POLL_S = 0.05
# sockaddr_un.sun_path is 108 bytes on Linux, including the NUL.
MAX_SOCKET_PATH = 107
LOG_TAIL_LINES = 40
REPLICATION_USER = "repl"
REPLICATION_PASSWORD = "repl"


class ServerStartError(RuntimeError):
    """A server of the group did not come up; the message carries its log tail."""


def missing_binaries(*names: str) -> list[str]:
    """The names among ``names`` found neither on PATH nor in the sbin directories."""
    return [name for name in names if _binary(name) is None]


def _binary(name: str) -> str | None:
    # mariadbd lives in /usr/sbin, which is not on a normal user's PATH.
    return shutil.which(name) or shutil.which(name, path="/usr/local/sbin:/usr/sbin")


def _require(name: str) -> str:
    path = _binary(name)
    if path is None:
        raise ServerStartError(f"{name} is not installed")
    return path


def free_ports(hosts: Sequence[str]) -> list[int]:
    """A port free now on each of ``hosts``, all distinct.

    Every socket stays bound until all are picked, so the kernel cannot hand
    out one port twice; another process may still take one before the server
    binds it, a window short enough for tests.
    """
    with contextlib.ExitStack() as stack:
        ports = []
        for host in hosts:
            sock = stack.enter_context(socket.socket(_family(host)))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def _mysqldb() -> Any:
    """The MySQL driver, imported when a MariaDB pair is used: the Redis launcher
    (imported by every test session) must not need the ``mysql`` extra."""
    import MySQLdb.cursors

    return MySQLdb


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def host_port(host: str, port: int) -> str:
    """``host:port`` as URLs write it (IPv6 literals in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _spawn(argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    """Start a long-running server writing its output to ``log``."""
    setpriv = shutil.which("setpriv")
    prefix = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
    with log.open("ab") as out:
        return subprocess.Popen(
            [*prefix, *argv], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )


def _run(argv: Sequence[str], log: Path, timeout_s: float) -> None:
    """Run a short-lived command to the end.

    It runs in its own process group so that a timeout or an interrupt kills
    its children too (``mariadb-install-db`` is a script around ``mariadbd``).
    """
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        code = process.wait(timeout=timeout_s)
    except BaseException as exc:
        _kill_group(process)
        if isinstance(exc, subprocess.TimeoutExpired):
            raise ServerStartError(
                f"{argv[0]} did not finish in {timeout_s} s:\n{log_tail(log)}"
            ) from None
        raise
    if code != 0:
        raise ServerStartError(f"{argv[0]} exited with {code}:\n{log_tail(log)}")


def _kill_group(leader: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group ``leader`` leads and wait until all of it is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(leader.pid, signal.SIGKILL)
    leader.wait()
    # The others are reaped by init; a zombie still counts as a group member.
    deadline = time.monotonic() + STOP_TIMEOUT_S
    with contextlib.suppress(ProcessLookupError):
        while time.monotonic() < deadline:
            os.killpg(leader.pid, 0)
            time.sleep(POLL_S)


def _terminate(processes: Sequence[subprocess.Popen[bytes]], timeout_s: float) -> None:
    """SIGTERM every live process, SIGKILL those alive after ``timeout_s``; reap all."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + timeout_s
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(
    process: subprocess.Popen[bytes],
    name: str,
    log: Path,
    probe: Callable[[], object],
    not_yet: type[Exception],
    deadline: float,
) -> None:
    """Call ``probe`` until it stops raising ``not_yet``; fail if the server exits or
    ``deadline`` (monotonic) passes, with its log tail."""
    while True:
        _check_alive(process, name, log)
        try:
            probe()
            return
        except not_yet:
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"{name} did not answer before its deadline:\n{log_tail(log)}"
                ) from None
            time.sleep(POLL_S)


def _check_alive(process: subprocess.Popen[bytes], name: str, log: Path) -> None:
    if process.poll() is not None:
        raise ServerStartError(f"{name} exited with {process.returncode}:\n{log_tail(log)}")


class Started:
    """Something a test starts and stops: a context manager that cleans up a failed start."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _start_steps(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        """Run the start steps; on any failure stop what started."""
        try:
            self._start_steps()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        raise NotImplementedError


class _ServerGroup(Started):
    """Server processes started together, stopped together, and on every failed start."""

    def __init__(self) -> None:
        self._processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> Self:
        if self._processes:
            raise RuntimeError(f"a {type(self).__name__} starts once; make a new one")
        return super().start()

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL after a timeout); safe to call again."""
        _terminate(self._processes, STOP_TIMEOUT_S)


class RedisClusterServers(_ServerGroup):
    """``masters`` Redis Cluster masters (no replicas) on ``hosts``, one per node.

    ``hosts`` defaults to ``host`` for every node; each node binds and announces
    its own host, so the same code can spread nodes over several addresses.
    ``node_timeout_ms`` is how long a silent node takes to be marked failing:
    shorter than Redis's 15 s so that tests which ``kill`` a node see it soon.
    ``timeout_s`` bounds each step of the start (answering PING, agreeing on
    the cluster).
    """

    BINARIES = ("redis-server",)

    def __init__(
        self,
        base_dir: Path,
        masters: int = 3,
        *,
        host: str = "127.0.0.1",
        hosts: Sequence[str] | None = None,
        ports: Sequence[int] | None = None,
        node_timeout_ms: int = 5000,
        timeout_s: float = 20.0,
    ) -> None:
        if masters < 1:
            raise ValueError(f"a cluster needs at least one master, not {masters}")
        self._hosts = list(hosts) if hosts is not None else [host] * masters
        if len(self._hosts) != masters:
            raise ValueError(f"{len(self._hosts)} hosts for {masters} masters")
        if ports is not None and len(ports) != masters:
            raise ValueError(f"{len(ports)} ports for {masters} masters")
        self._base_dir = base_dir
        self._wanted_ports = list(ports) if ports is not None else None
        self._node_timeout_ms = node_timeout_ms
        self._timeout_s = timeout_s
        self._ports: list[int] = []
        self._bus_ports: list[int] = []
        super().__init__()

    @property
    def nodes(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every node, in slot order."""
        return list(zip(self._hosts, self._ports, strict=True))

    @property
    def url(self) -> str:
        """``redis+cluster://h1:p1,h2:p2,...`` as ``ichnaea.config`` reads it."""
        return "redis+cluster://" + ",".join(host_port(h, p) for h, p in self.nodes)

    def node_client(self, index: int) -> redis.Redis:
        """A plain (non-cluster) client of node ``index``, for per-node commands."""
        host, port = self.nodes[index]
        # No retries: a node that is down or not up yet should say so at once
        # (redis-py retries three times with back-off by default).
        return redis.Redis(
            host=host,
            port=port,
            socket_connect_timeout=1,
            socket_timeout=5,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )

    def log(self, index: int) -> Path:
        """Node ``index``'s log file."""
        return self._base_dir / f"redis-{index}" / "redis.log"

    def _start_steps(self) -> None:
        """Start the nodes and form the cluster."""
        self._start_nodes()
        self._form_cluster()

    def _start_nodes(self) -> None:
        binary = _require("redis-server")
        picked = free_ports(self._hosts * 2)
        count = len(self._hosts)
        self._ports = self._wanted_ports or picked[:count]
        self._bus_ports = picked[count:]
        for index, (host, port) in enumerate(self.nodes):
            node_dir = self._base_dir / f"redis-{index}"
            node_dir.mkdir(parents=True, exist_ok=True)
            options = {
                "port": str(port),
                "bind": host,
                "protected-mode": "no",
                "daemonize": "no",
                "dir": str(node_dir),
                # _spawn appends stdout to the same file: what redis-server
                # says before it has read this option lands there too.
                "logfile": str(self.log(index)),
                "save": "",
                "appendonly": "no",
                "cluster-enabled": "yes",
                "cluster-config-file": str(node_dir / "nodes.conf"),
                "cluster-port": str(self._bus_ports[index]),
                "cluster-announce-ip": host,
                "cluster-node-timeout": str(self._node_timeout_ms),
            }
            argv = [binary]
            for name, value in options.items():
                argv += [f"--{name}", value]
            self._processes.append(_spawn(argv, self.log(index)))
        deadline = time.monotonic() + self._timeout_s
        for index in range(len(self._processes)):
            self._wait_ping(index, deadline)

    def _wait_ping(self, index: int, deadline: float) -> None:
        with self.node_client(index) as client:
            _wait_until_up(
                self._processes[index],
                f"redis node {index}",
                self.log(index),
                client.ping,
                redis.RedisError,  # not listening yet, or still loading
                deadline,
            )

    def _form_cluster(self) -> None:
        count = len(self._processes)
        first_host, first_port = self.nodes[0]
        for index in range(count):
            first_slot = index * REDIS_SLOTS // count
            last_slot = (index + 1) * REDIS_SLOTS // count - 1
            with self.node_client(index) as client:
                client.cluster("ADDSLOTSRANGE", first_slot, last_slot)
                client.cluster("SET-CONFIG-EPOCH", index + 1)
                if index:
                    client.cluster("MEET", first_host, first_port, self._bus_ports[0])
        deadline = time.monotonic() + self._timeout_s
        for index in range(count):
            self._wait_cluster_ok(index, count, deadline)

    def _wait_cluster_ok(self, index: int, count: int, deadline: float) -> None:
        with self.node_client(index) as client:
            while True:
                _check_alive(self._processes[index], f"redis node {index}", self.log(index))
                info: dict[str, str] = client.cluster("INFO")
                if info["cluster_state"] == "ok" and int(info["cluster_known_nodes"]) == count:
                    return
                if time.monotonic() > deadline:
                    lines = "\n".join(f"{key}:{value}" for key, value in info.items())
                    raise ServerStartError(
                        f"redis node {index} ({host_port(*self.nodes[index])}) did not see an"
                        f" ok cluster of {count} nodes in {self._timeout_s} s:\n{lines}"
                    )
                time.sleep(POLL_S)

    def flushall(self) -> None:
        """Empty every live master (slots and cluster layout stay)."""
        for index, process in enumerate(self._processes):
            if process.poll() is None:
                with self.node_client(index) as client:
                    client.flushall()

    def kill(self, index: int) -> None:
        """SIGKILL node ``index``: a crash, with no chance to say goodbye."""
        process = self._processes[index]
        if process.poll() is None:
            process.kill()
        process.wait()


class MariaDBPrimaryReplica(_ServerGroup):
    """A MariaDB primary and a read-only replica that follows it by GTID.

    ``root`` has an empty password from any address; the URLs are
    SQLAlchemy's ``mysql://`` (mysqlclient) form. ``timeout_s`` bounds each
    step of the start (initialising, accepting connections, replicating).
    """

    BINARIES = ("mariadbd", "mariadb-install-db")

    def __init__(self, base_dir: Path, *, host: str = "127.0.0.1", timeout_s: float = 60.0) -> None:
        self._base_dir = base_dir
        self._host = host
        self._timeout_s = timeout_s
        self._ports: list[int] = []
        super().__init__()
        for role in ("primary", "replica"):
            if len(str(self._socket(role))) > MAX_SOCKET_PATH:
                raise ValueError(f"{self._socket(role)} is too long for a unix socket")

    @property
    def primary_port(self) -> int:
        return self._ports[0]

    @property
    def replica_port(self) -> int:
        return self._ports[1]

    @property
    def primary_url(self) -> str:
        return f"mysql://root@{host_port(self._host, self.primary_port)}/"

    @property
    def replica_url(self) -> str:
        return f"mysql://root@{host_port(self._host, self.replica_port)}/"

    def url(self, database: str, *, replica: bool = False) -> str:
        """The primary's (or the replica's) URL naming ``database``."""
        return (self.replica_url if replica else self.primary_url) + database

    def log(self, role: str) -> Path:
        """The error log of ``role`` ("primary" or "replica")."""
        return self._base_dir / role / "mariadbd.log"

    def _socket(self, role: str) -> Path:
        return self._base_dir / role / "mariadbd.sock"

    def _start_steps(self) -> None:
        """Initialise, start and connect both servers."""
        self._start_servers()
        self._create_users()
        self._follow_primary()

    def _start_servers(self) -> None:
        mariadbd, install_db = _require("mariadbd"), _require("mariadb-install-db")
        self._ports = free_ports([self._host, self._host])
        # mariadbd refuses to run as root unless told to.
        user = ["--user=root"] if os.geteuid() == 0 else []
        # Small and quick to start, and the character set the system server has
        # (Debian's my.cnf sets it; --no-defaults would give latin1).
        common = [
            "--no-defaults",
            *user,
            "--innodb-buffer-pool-size=64M",
            "--innodb-log-file-size=16M",
            "--skip-innodb-buffer-pool-dump-at-shutdown",
            "--performance-schema=OFF",
            "--skip-name-resolve",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_general_ci",
        ]
        for index, role in enumerate(("primary", "replica")):
            data_dir = self._base_dir / role / "data"
            # A temporary directory of its own: the shared /tmp may hold a
            # stale file of a killed server whose pid this one got again.
            tmp_dir = self._base_dir / role / "tmp"
            tmp_dir.mkdir(parents=True, exist_ok=True)
            install = [install_db, *common, f"--datadir={data_dir}", f"--tmpdir={tmp_dir}"]
            install += ["--auth-root-authentication-method=normal", "--skip-test-db"]
            _run(install, self._base_dir / role / "install-db.log", self._timeout_s)
            # The replica keeps no binary log of its own (nothing replicates
            # from it); its relay log is named so as not to follow the host name.
            role_args = (
                ["--log-bin=mariadb-bin", "--binlog-format=ROW"]
                if role == "primary"
                else ["--read-only", "--relay-log=mariadb-relay"]
            )
            argv = [
                mariadbd,
                *common,
                f"--datadir={data_dir}",
                f"--tmpdir={tmp_dir}",
                f"--socket={self._socket(role)}",
                f"--port={self._ports[index]}",
                f"--bind-address={self._host}",
                f"--pid-file={self._base_dir / role / 'mariadbd.pid'}",
                f"--log-error={self.log(role)}",
                f"--server-id={index + 1}",
                *role_args,
            ]
            self._processes.append(_spawn(argv, self.log(role)))
        deadline = time.monotonic() + self._timeout_s
        for index, role in enumerate(("primary", "replica")):

            def connects(role: str = role) -> None:
                self._connect(role).close()

            _wait_until_up(
                self._processes[index],
                f"mariadbd {role}",
                self.log(role),
                connects,
                _mysqldb().OperationalError,
                deadline,
            )

    def _connect(self, role: str) -> Any:
        # Over the socket as root@localhost: the only account that exists
        # before _create_users, whatever address the server binds.
        return _mysqldb().connect(
            unix_socket=str(self._socket(role)),
            user="root",
            connect_timeout=5,
            autocommit=True,
        )

    @contextlib.contextmanager
    def _cursor(self, role: str) -> Iterator[Any]:
        connection = self._connect(role)
        try:
            yield connection.cursor(_mysqldb().cursors.DictCursor)
        finally:
            connection.close()

    def _create_users(self) -> None:
        for role in ("primary", "replica"):
            with self._cursor(role) as cursor:
                cursor.execute("SET SESSION sql_log_bin = 0")
                cursor.execute("CREATE USER 'root'@'%' IDENTIFIED BY ''")
                cursor.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION")
                if role == "primary":
                    cursor.execute(
                        "CREATE USER %s@'%%' IDENTIFIED BY %s",
                        (REPLICATION_USER, REPLICATION_PASSWORD),
                    )
                    cursor.execute("GRANT REPLICATION SLAVE ON *.* TO %s@'%%'", (REPLICATION_USER,))

    def _follow_primary(self) -> None:
        with self._cursor("replica") as cursor:
            cursor.execute(
                "CHANGE MASTER TO MASTER_HOST = %s, MASTER_PORT = %s, MASTER_USER = %s,"
                " MASTER_PASSWORD = %s, MASTER_CONNECT_RETRY = 1, MASTER_USE_GTID = slave_pos",
                (self._host, self.primary_port, REPLICATION_USER, REPLICATION_PASSWORD),
            )
        self.start_replication()

    def _replica_status(self) -> dict[str, Any] | None:
        with self._cursor("replica") as cursor:
            cursor.execute("SHOW SLAVE STATUS")
            row: dict[str, Any] | None = cursor.fetchone()
            return row

    def start_replication(self) -> None:
        """START SLAVE and wait until both replication threads run."""
        with self._cursor("replica") as cursor:
            cursor.execute("START SLAVE")
        deadline = time.monotonic() + self._timeout_s
        while True:
            status = self._replica_status() or {}
            if status.get("Slave_IO_Running") == "Yes" and status.get("Slave_SQL_Running") == "Yes":
                return
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"the replica did not start replicating in {self._timeout_s} s:\n"
                    f"{status}\n{log_tail(self.log('replica'))}"
                )
            time.sleep(POLL_S)

    def stop_replication(self) -> None:
        """STOP SLAVE: the replica keeps serving reads but falls behind."""
        with self._cursor("replica") as cursor:
            cursor.execute("STOP SLAVE")

    def delay_replication(self, seconds: int) -> None:
        """Let the replica apply each event ``seconds`` after the primary wrote it."""
        with self._cursor("replica") as cursor:
            cursor.execute("STOP SLAVE")
            cursor.execute(f"CHANGE MASTER TO MASTER_DELAY = {int(seconds)}")
        self.start_replication()

    def kill_replica(self) -> None:
        """SIGKILL the replica's server (a lost replica); the primary runs on."""
        replica = self._processes[1]
        replica.kill()
        replica.wait()

    def replica_lag_seconds(self) -> int | None:
        """Seconds_Behind_Master; None when the replica is not replicating."""
        status = self._replica_status()
        if status is None or status["Seconds_Behind_Master"] is None:
            return None
        return int(status["Seconds_Behind_Master"])

    def wait_for_replica(self, timeout_s: float = 30.0) -> None:
        """Wait until the replica has applied everything the primary has logged so far."""
        with self._cursor("primary") as cursor:
            cursor.execute("SELECT @@gtid_binlog_pos AS pos")
            position = cursor.fetchone()["pos"]
        with self._cursor("replica") as cursor:
            cursor.execute("SELECT MASTER_GTID_WAIT(%s, %s) AS waited", (position, timeout_s))
            if cursor.fetchone()["waited"] != 0:
                raise TimeoutError(f"the replica did not reach {position} in {timeout_s} s")
