"""Several "hosts" on one machine: network namespaces on a bridge the test creates.

A :class:`Network` makes a Linux bridge with addresses of its own in the
root namespace (where the test runs the shared services: Redis Cluster,
MariaDB) and one network namespace per :class:`Host`, joined to the bridge
by a veth pair, each with its own address. Processes started with
:meth:`Host.run` live in the host's namespace: they reach the services over
the bridge, and the test reaches them at the host's address.

:meth:`Host.kill` SIGKILLs every process of the namespace (``ip netns
pids``), as a machine that loses power; :meth:`Host.cut` blackholes the
route to one address for a while, as a network partition.

Needs root (namespaces, links, routes) and ``ip`` from iproute2;
:func:`unavailable` says why a run cannot happen.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from tests.scaleout.servers import Started


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def unavailable() -> str | None:
    """Why namespaces cannot be used here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (the multi-host test creates a bridge and hosts)"
    if shutil.which("ip") is None:
        return "`ip` from iproute2 is missing (Debian: apt-get install iproute2)"
    return None


class Host:
    """One network namespace with an address on the bridge, and the processes run in it."""

    def __init__(self, network: Network, name: str, address: str, data_dir: Path) -> None:
        self.network = network
        self.name = name
        self.address = address
        self.data_dir = data_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def run(
        self, role: str, argv: Sequence[str], env: Mapping[str, str], log: IO[bytes]
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside the namespace, remembered as ``role``."""
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.name, *argv],
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[role] = process
        return process

    def ichnaea(self, role: str, args: Sequence[str], env: Mapping[str, str]) -> None:
        """Start ``ichnaea <args>`` in the namespace, logging to ``<data dir>/<role>.log``."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / f"{role}.log").open("ab") as log:
            self.run(role, [sys.executable, "-m", "ichnaea", *args], env, log)

    def log(self, role: str) -> str:
        path = self.data_dir / f"{role}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"

    def stop(self, role: str, timeout_s: float = 30.0) -> None:
        """SIGTERM one role's process group, SIGKILL after ``timeout_s``."""
        process = self.processes.pop(role)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def pids(self) -> list[int]:
        """Every process in the namespace."""
        found = _ip("netns", "pids", self.name, check=False)
        return [int(pid) for pid in found.stdout.split()]

    def kill(self) -> int:
        """SIGKILL every process in the namespace (the host loses power); return how many."""
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):  # gone meanwhile
                os.kill(pid, signal.SIGKILL)
        for process in self.processes.values():
            process.wait()
        self.processes.clear()
        return len(pids)

    def cut(self, address: str) -> None:
        """Drop every packet from this host to ``address`` until :meth:`heal`."""
        _ip("netns", "exec", self.name, "ip", "route", "add", "blackhole", f"{address}/32")

    def heal(self, address: str) -> None:
        _ip("netns", "exec", self.name, "ip", "route", "del", "blackhole", f"{address}/32")


class Network(Started):
    """A bridge with ``service_addresses`` in the root namespace, and ``hosts`` namespaces.

    Names carry the test's pid, so parallel runs do not meet; everything
    made is removed by :meth:`stop`, also after a failed start.
    """

    def __init__(self, base_dir: Path, *, subnet: int, service_addresses: int, hosts: int) -> None:
        tag = os.getpid() % 100_000
        self.bridge = f"ichbr{tag}"
        self.prefix = f"10.{77 + subnet // 250}.{subnet % 250}"
        self.services = [f"{self.prefix}.{1 + i}" for i in range(service_addresses)]
        self.hosts = [
            Host(self, f"ich{tag}h{i + 1}", f"{self.prefix}.{11 + i}", base_dir / f"host{i + 1}")
            for i in range(hosts)
        ]
        self._veths = [f"ich{tag}v{i + 1}" for i in range(hosts)]

    def _start_steps(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        for address in self.services:
            _ip("addr", "add", f"{address}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for host, veth in zip(self.hosts, self._veths, strict=True):
            _ip("netns", "add", host.name)
            _ip("link", "add", veth, "type", "veth", "peer", "name", f"{veth}p")
            _ip("link", "set", veth, "master", self.bridge)
            _ip("link", "set", veth, "up")
            _ip("link", "set", f"{veth}p", "netns", host.name)
            inside = ("netns", "exec", host.name, "ip")
            _ip(*inside, "addr", "add", f"{host.address}/24", "dev", f"{veth}p")
            _ip(*inside, "link", "set", f"{veth}p", "up")
            _ip(*inside, "link", "set", "lo", "up")

    def stop(self) -> None:
        """Kill what runs in the hosts, then remove namespaces, links and the bridge."""
        for host in self.hosts:
            host.kill()
            _ip("netns", "del", host.name, check=False)
        for veth in self._veths:
            _ip("link", "del", veth, check=False)
        _ip("link", "del", self.bridge, check=False)


def wait_for(
    what: str, check: Callable[[], object], timeout_s: float, interval_s: float = 0.2
) -> float:
    """Call ``check`` until it returns true; return the seconds waited, or fail naming ``what``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"{what}: not after {timeout_s:.0f} s")
        time.sleep(interval_s)
    return time.monotonic() - start
