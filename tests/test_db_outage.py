"""The web role under load while its database goes away and comes back (issue 8, item 1).

A real ``ichnaea web`` process talks to MariaDB through a TCP proxy that
the test stops for a few seconds mid-load: new connections are refused and
pooled ones break, as when the database host goes away. Client threads keep
asking ``/v1/geolocate`` (Wi-Fi and IP), ``/v1/country``, an IP-only
geolocate and ``/__heartbeat__``. No answer may be a 500: the heartbeat
says 503; without the station index the station lookups degrade (GeoIP
answers) and, once the proxy is back, answer from the stations again; with
the index every Wi-Fi locate is answered from the stations throughout.

The key is known and cached before the outage on purpose: a lookup of an
uncached key would open the circuit breaker first and so hide a station
lookup that fails open (the key lookup's own outage is ``test_degraded``'s
``test_24``).

The status counts per endpoint and phase are printed (``pytest -s``) and
are part of every assertion message.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from ichnaea.repositories.session import create_engine
from tests._tcp_proxy import TcpProxy
from tests.fixtures_app import Backend, Seeder
from tests.test_end_to_end import free_port
from tests.test_pipeline_end_to_end import role_env, stop, wait_until_up, wipe

pytestmark = [pytest.mark.slow, pytest.mark.mysql]

MACS = ["a0b1c2d3e4f5", "a0b1c2d3e4f6", "a0b1c2d3e4f7"]
KEY = "e2etest"  # the key wipe() creates
LONDON = {"X-Forwarded-For": "81.2.69.192"}  # in the GeoIP test data
WIFI = {"wifiAccessPoints": [{"macAddress": m, "signalStrength": -60} for m in MACS]}
# (name, path, body, headers)
REQUESTS: list[tuple[str, str, dict[str, Any] | None, dict[str, str]]] = [
    ("geolocate wifi", f"/v1/geolocate?key={KEY}", WIFI, LONDON),
    ("country wifi", f"/v1/country?key={KEY}", WIFI, LONDON),
    ("geolocate ip-only", f"/v1/geolocate?key={KEY}", {}, LONDON),
    ("heartbeat", "/__heartbeat__", None, {}),
]
CLIENT_THREADS = 4
WARM_UP_S = 2.0
OUTAGE_S = 4.0
# The breaker skips the database for 5 s after a failure; allow for that.
RECOVERY_TIMEOUT_S = 12.0


class Recorder:
    """Every answer, by phase and endpoint; Wi-Fi geolocates also by who answered."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.phase = "before"
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self.wifi_answer_after_outage = threading.Event()

    def record(self, name: str, outcome: str) -> None:
        with self.lock:
            self.counts[(self.phase, name, outcome)] += 1
            if self.phase == "after" and outcome == "200 stations":
                self.wifi_answer_after_outage.set()

    def set_phase(self, phase: str) -> None:
        with self.lock:
            self.phase = phase

    def total(self, outcome_prefix: str, phase: str | None = None) -> int:
        with self.lock:
            return sum(
                n
                for (p, _, outcome), n in self.counts.items()
                if outcome.startswith(outcome_prefix) and phase in (None, p)
            )

    def report(self) -> str:
        with self.lock:
            items = sorted(self.counts.items())
        lines = ["status counts (phase, endpoint, outcome: count):"]
        lines += [f"  {phase:6} {name:18} {outcome:13} {n}" for (phase, name, outcome), n in items]
        per_endpoint: Counter[tuple[str, str]] = Counter()
        for (_, name, outcome), n in items:
            per_endpoint[(name, outcome.split()[0])] += n
        lines.append("totals per endpoint and status:")
        lines += [
            f"  {name:18} {status:5} {n}" for (name, status), n in sorted(per_endpoint.items())
        ]
        return "\n".join(lines)


def outcome(name: str, response: httpx.Response) -> str:
    if name == "geolocate wifi" and response.status_code == 200:
        # GeoIP answers carry "fallback": "ipf"; the stations' answers do not.
        return "200 geoip" if response.json().get("fallback") == "ipf" else "200 stations"
    return str(response.status_code)


def load(url: str, recorder: Recorder, done: threading.Event, offset: int) -> None:
    with httpx.Client(base_url=url, timeout=20) as client:
        i = offset
        while not done.is_set():
            name, path, body, headers = REQUESTS[i % len(REQUESTS)]
            i += 1
            try:
                if body is None:
                    response = client.get(path, headers=headers)
                else:
                    response = client.post(path, json=body, headers=headers)
            except httpx.TransportError as exc:
                recorder.record(name, f"error {exc.__class__.__name__}")
                continue
            recorder.record(name, outcome(name, response))


@pytest.fixture
def proxied_backend(
    migrated_mysql_url: str, redis_server_url: str
) -> Iterator[tuple[Backend, TcpProxy]]:
    wipe(migrated_mysql_url)
    seeder = Seeder(create_engine(migrated_mysql_url, pooled=False))
    for mac in MACS:
        seeder.wifi(mac, lat=51.5, lon=-0.1)
    url = make_url(migrated_mysql_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 3306))
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    with proxy:
        yield Backend("real", proxied, redis_server_url), proxy
    seeder.cleanup()
    seeder.engine.dispose()
    wipe(migrated_mysql_url)


@pytest.mark.parametrize("index", ["database", "index"])
def test_database_outage_under_load_gives_no_500_and_locate_recovers(
    proxied_backend: tuple[Backend, TcpProxy], tmp_path: Path, index: str
) -> None:
    backend, proxy = proxied_backend
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "web.log"
    env = role_env(backend, tmp_path / "data")
    env["STATION_INDEX"] = "true" if index == "index" else "false"
    with log.open("wb") as out:
        web = start_web(port, env, out)
    recorder = Recorder()
    done = threading.Event()
    threads = [
        threading.Thread(target=load, args=(url, recorder, done, n), daemon=True)
        for n in range(CLIENT_THREADS)
    ]
    try:
        wait_until_up(url, web, log)
        if index == "index":
            wait_for_index(url)
        warm = httpx.post(f"{url}/v1/geolocate?key={KEY}", json=WIFI, headers=LONDON, timeout=20)
        assert warm.status_code == 200 and "fallback" not in warm.json(), warm.text
        for thread in threads:
            thread.start()
        time.sleep(WARM_UP_S)
        recorder.set_phase("during")
        proxy.stop()
        time.sleep(OUTAGE_S)
        recorder.set_phase("after")
        proxy.start()
        recovered = recorder.wifi_answer_after_outage.wait(RECOVERY_TIMEOUT_S)
        time.sleep(0.5)  # a little more load on the recovered database
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=30)
        stop(web)
    report = recorder.report()
    print(report)
    assert recorder.total("500") == 0, f"{report}\n{error_lines(log)}"
    assert recorder.total("error") == 0, report
    if index == "index":
        # The index does not need the database to answer: every Wi-Fi
        # locate of the outage was answered from the stations...
        assert recorder.total("200 geoip", "during") == 0, report
        assert recorder.total("200 stations", "during") > 0, report
        # ...while the outage was real (the heartbeat saw it).
        assert recorder.total("503", "during") > 0, report
    else:
        # The outage was real: Wi-Fi locates fell back to GeoIP while the proxy was down...
        assert recorder.total("200 geoip", "during") > 0, report
        # ...and answered from the stations again once it was back.
        assert recovered, report


def wait_for_index(url: str, timeout_s: float = 60.0) -> None:
    """Wait until the web process reports its station index up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = httpx.get(f"{url}/__heartbeat__", timeout=10).json()
        if body.get("station_index", {}).get("up"):
            return
        time.sleep(0.1)
    raise AssertionError(f"station index not up after {timeout_s} s: {body}")


def error_lines(log: Path) -> str:
    """The distinct exception lines of the server log (the last line of each traceback)."""
    seen = dict.fromkeys(
        line.strip()
        for line in log.read_text(errors="replace").splitlines()
        if line[:1].isalpha() and ("Error" in line.split(":")[0] or "Exception" in line[:40])
    )
    return "server log exceptions:\n" + "\n".join(list(seen)[:20])


def start_web(port: int, env: dict[str, str], out: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ichnaea", "web", "--port", str(port), "--processes", "1"],
        env=env,
        stdout=out,
        stderr=out,
    )
