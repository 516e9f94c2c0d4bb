"""Run the web processes: uvicorn servers, each on its own SO_REUSEPORT socket.

uvicorn's own supervisor (``uvicorn.run(workers=N)``) binds one listening
socket and shares it: every process wakes for a new connection and the
first to accept takes it, along with whatever else is queued. A burst of
connections (a load balancer opening its pool, a benchmark's 32
keep-alive connections) then often lands on one process while the others
idle: measured with ``benchmarks/load_locate.py``, Wi-Fi locates ran at
7,100 or 11,600 requests per second from one round to the next, depending
on how the connections happened to fall.

Here each process gets its own socket bound to the same address with
``SO_REUSEPORT``, and the kernel spreads connections over them by their
addresses, so every process takes its share from the first connection.
The parent only supervises: it starts the processes (``spawn``), starts a
replacement for one that dies (except when it failed before serving,
which would fail the same way again), and on SIGTERM or SIGINT passes the
signal on and waits for the processes' graceful shutdown. With one process,
or where ``SO_REUSEPORT`` does not exist, ``uvicorn.run`` does it all.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import sys
import threading
from multiprocessing.context import SpawnProcess
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE  # a process that failed before it served

log = logging.getLogger(__name__)
# Beyond the servers' own graceful shutdown, how long the parent waits.
SHUTDOWN_MARGIN_S = 10.0


def serve(app: str, *, host: str, port: int, processes: int, **options: Any) -> None:
    """Serve the ASGI app factory ``app`` (an import string) with ``processes`` processes.

    ``options`` are ``uvicorn.Config``'s keyword arguments.
    """
    if processes <= 1 or not hasattr(socket, "SO_REUSEPORT"):
        uvicorn.run(app, factory=True, host=host, port=port, workers=processes, **options)
        return
    config = uvicorn.Config(app, factory=True, host=host, port=port, **options)
    try:
        _check_free(host, port)
        sockets = [_listen(host, port, config.backlog) for _ in range(processes)]
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", host, port, exc)
        sys.exit(1)
    supervisor = Supervisor(config, sockets)
    supervisor.run()
    if supervisor.failed:
        sys.exit(STARTUP_FAILURE)  # as a single uvicorn process exits


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _check_free(host: str, port: int) -> None:
    """Raise ``OSError`` (address in use) if anything listens on ``host:port`` already.

    Sockets with ``SO_REUSEPORT`` share a port with any other such socket of
    the same user: a second ``ichnaea web`` (an old one left running) would
    silently take half the connections. A socket without it cannot bind
    where any listener is, as uvicorn's own socket would fail.
    """
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    family = _family(host)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def _run_server(config: uvicorn.Config, sock: socket.socket) -> None:
    # As uvicorn's own children do: a spawned process has none of the parent's
    # logging set-up (the access log would be on again).
    config.configure_logging()
    uvicorn.Server(config).run(sockets=[sock])


class Supervisor:
    """One process per socket, replaced when it dies; signals passed on."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        self.config = config
        self.sockets = sockets
        self.processes: list[SpawnProcess] = []
        self.stopping = threading.Event()
        self.failed = False  # a process failed before it served
        self._context = multiprocessing.get_context("spawn")

    def _start(self, sock: socket.socket) -> SpawnProcess:
        process = self._context.Process(target=_run_server, args=(self.config, sock))
        process.start()
        return process

    def _stop(self, signum: int, frame: object) -> None:
        self.stopping.set()

    def run(self) -> None:
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.processes = [self._start(sock) for sock in self.sockets]
            log.info(
                "web processes %s started, one SO_REUSEPORT socket each on %s:%d",
                ", ".join(str(p.pid) for p in self.processes),
                self.config.host,
                self.config.port,
            )
            while not self.stopping.wait(0.5):
                self._replace_dead()
        finally:
            self._shut_down()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for sock in self.sockets:
                sock.close()

    def _replace_dead(self) -> None:
        for index, process in enumerate(self.processes):
            if process.is_alive():
                continue
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                log.error("web process %d failed to start; stopping", process.pid)
                self.failed = True
                self.stopping.set()
                return
            log.warning(
                "web process %d died (exit code %s); starting another",
                process.pid,
                process.exitcode,
            )
            self.processes[index] = self._start(self.sockets[index])

    def _shut_down(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn's graceful shutdown
        grace = (self.config.timeout_graceful_shutdown or 0) + SHUTDOWN_MARGIN_S
        for process in self.processes:
            process.join(grace)
            if process.is_alive():
                log.error("web process %d did not stop in %.0f s; killing it", process.pid, grace)
                process.kill()
                process.join()
