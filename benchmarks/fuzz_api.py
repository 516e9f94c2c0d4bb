"""Fuzz the five API endpoints with structure-aware bodies; any 500 is a bug.

    # start `ichnaea web` on the configured database and Redis, teach it a few
    # stations, fuzz it over keep-alive connections, summarise its log:
    .venv/bin/python benchmarks/fuzz_api.py --serve --count 100000 --seed 1

    # an already running server (the API key must exist, with locate and region allowed):
    .venv/bin/python benchmarks/fuzz_api.py --url http://127.0.0.1:8000 --key fuzz --count 20000

    # in process, through create_app() and the configured backends:
    .venv/bin/python benchmarks/fuzz_api.py --count 2000

Endpoints: ``/v1/geolocate``, ``/v1/country``, ``/v2/geosubmit``,
``/v1/geosubmit`` and ``/v1/submit``, in turn. Case ``i`` of seed ``s`` is a
pure function of ``(s, i)`` (``random.Random(f"{s}:{i}")``), so any body can
be regenerated alone: ``--only 4711`` replays one case and prints it.

How a body is made:

1. A valid body of the endpoint's schema (geolocate v1, geosubmit v2 and v1,
   submit v0) over a fixed pool of networks: Wi-Fi, Bluetooth, GSM, WCDMA,
   LTE and 5G NR cells (36-bit cell ids, 24-bit TACs), grouped by site so
   a query can mix an LTE and an NR cell the server has learned.
2. One to four tree mutations at random places: a hostile value (integers
   of tens to thousands of digits, ``1e400``, ``NaN``/``Infinity`` tokens,
   numeric-looking strings such as ``"1_000"``, ``"\u0661\u0662\u0663"``, ``"0x1f"``),
   a value of another JSON type, deleted or unknown keys, nesting a few
   thousand levels deep, empty and very long lists, unicode (lone
   surrogates too); or the whole body replaced by random JSON.
3. Sometimes an encoding mutation: gzip (valid, truncated, corrupt, a bomb
   past the inflate limit, claimed but absent), other ``Content-Encoding``
   values, ``Content-Type`` and charset variants (UTF-16 bodies, unknown
   and non-text codecs), a BOM, truncated JSON, an empty body; and the API
   key missing, unknown or malformed, or the method GET/HEAD/PUT.

Over HTTP every case goes through one ``httpx.AsyncClient`` (HTTP/1.1
keep-alive, ``--concurrency`` connections). A 5xx answer or a transport
error (a connection the server closed: the next request on it fails) is
a failure: its request is saved under ``--failures`` as ``<i>.body`` plus
``<i>.json`` (endpoint, method, query, headers, mutations) for
reproduction. The summary gives status counts per endpoint; with
``--serve`` it also lists the distinct tracebacks of the server log (by
their last frame and exception type) with their counts. The exit status
is 1 when any case failed.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gzip
import json
import logging
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

ENDPOINTS = ("/v1/geolocate", "/v1/country", "/v2/geosubmit", "/v1/geosubmit", "/v1/submit")
LOCATE = frozenset(ENDPOINTS[:2])
KEY = "fuzz"
POOL_SEED = 20261206

# -- the pool of networks -----------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """Networks seen together at one place; the server learns them from ``teach_reports``."""

    lat: float
    lon: float
    wifi: tuple[str, ...]
    blue: tuple[str, ...]
    cells: tuple[dict[str, Any], ...]


def make_pool(sites: int = 8) -> list[Site]:
    rng = random.Random(POOL_SEED)
    cities = [(51.5, -0.1), (52.52, 13.40), (48.85, 2.35), (40.71, -74.0)]
    pool = []
    for n in range(sites):
        lat, lon = cities[n % len(cities)]
        lat, lon = lat + rng.uniform(-0.05, 0.05), lon + rng.uniform(-0.05, 0.05)
        mcc = {51.5: 234, 52.52: 262, 48.85: 208, 40.71: 310}[cities[n % len(cities)][0]]

        def mac() -> str:
            return "%012x" % (rng.getrandbits(48) & ~(1 << 40))  # not multicast

        cells = (
            {"radioType": "gsm", "mobileCountryCode": mcc, "mobileNetworkCode": 1,
             "locationAreaCode": rng.randint(1, 65533), "cellId": rng.randint(1, 65535)},
            {"radioType": "wcdma", "mobileCountryCode": mcc, "mobileNetworkCode": 2,
             "locationAreaCode": rng.randint(1, 65533), "cellId": rng.randint(1, 2**28 - 1)},
            {"radioType": "lte", "mobileCountryCode": mcc, "mobileNetworkCode": 3,
             "locationAreaCode": rng.randint(1, 65533), "cellId": rng.randint(1, 2**28 - 1)},
            {"radioType": "nr", "mobileCountryCode": mcc, "mobileNetworkCode": 3,
             "locationAreaCode": rng.randint(65536, 2**24 - 1),
             "newRadioCellId": rng.randint(2**30, 2**36 - 1)},
        )  # fmt: skip
        pool.append(Site(lat, lon, tuple(mac() for _ in range(4)), (mac(), mac()), cells))
    return pool


def teach_reports(pool: list[Site]) -> list[dict[str, Any]]:
    """Valid v2 reports that teach every network of the pool (three per site)."""
    return [
        {
            "timestamp": int(time.time() * 1000),
            "position": {"latitude": s.lat + k * 1e-5, "longitude": s.lon, "accuracy": 10.0},
            "wifiAccessPoints": [{"macAddress": m, "signalStrength": -60 - k} for m in s.wifi],
            "bluetoothBeacons": [{"macAddress": m, "signalStrength": -70} for m in s.blue],
            "cellTowers": [dict(c) for c in s.cells],
        }
        for s in pool
        for k in range(3)
    ]


# -- values -------------------------------------------------------------------------------


class Raw(str):
    """JSON text put into the body as it is (tokens ``json.dumps`` cannot write)."""


HOSTILE_STRINGS = (
    "NaN", "nan", "inf", "-Infinity", "1e400", "-1e400", "0x1f", "1_000", "\u0661\u0662\u0663",
    "\u0663.\u0665", " 12 ", "12abc", "", " ", "\x00", "None", "null", "true", "-", "+5", "1e-7",
    "9" * 400, "-" + "9" * 400, "1" + "0" * 5000, "\ud800", "\U0001f6f0\U0001f4e1",
    "\uff41\uff42\uff43", "e\u0301", "\u202eRTL",
)  # fmt: skip
HOSTILE_RAW = ("1e400", "-1e400", "1e-400", "NaN", "Infinity", "-Infinity", "1E+999", "-0",
               "0.0e0", "123456789012345678901234567890.5", "1" + "0" * 5000,
               "-" + "9" * 4400)  # fmt: skip
HOSTILE_NUMBERS = (2**31, 2**31 - 1, -(2**31), 2**32, 2**53 + 1, 2**63, 2**63 - 1, -(2**63),
                   2**64, 1e308, -1e308, 5e-324, -0.0, 0.5, -1, 0)  # fmt: skip


def random_text(rng: random.Random, size: int = 12) -> str:
    alphabet = 'aZ09_-:.{}[]"\\ /\t\né中😀\u0300\ufeff\x7f'
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, size)))


def hostile(rng: random.Random) -> Any:
    kind = rng.randrange(9)
    if kind == 0:
        return rng.choice((1, -1)) * int("9" * rng.randint(20, 500))
    if kind == 1:
        return rng.choice(HOSTILE_NUMBERS)
    if kind == 2:
        return Raw(rng.choice(HOSTILE_RAW))
    if kind == 3:
        return rng.choice(HOSTILE_STRINGS)
    if kind == 4:
        return random_text(rng, rng.choice((5, 50, 5000)))
    if kind == 5:
        return rng.choice((True, False, None))
    if kind == 6:
        return rng.choice(([], {}, [None], [[]], {"": None}))
    if kind == 7:
        depth = rng.choice((10, 100, 990, 3000, 20000))
        opener, closer = rng.choice((("[", "]"), ('{"a":', "}")))
        return Raw(opener * depth + "1" + closer * depth)
    return random_json(rng, 3)


def random_json(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(8 if depth > 0 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randint(-(2**40), 2**40)
    if kind == 3:
        return rng.uniform(-1e6, 1e6)
    if kind == 4:
        return random_text(rng)
    if kind == 5:
        return hostile(rng) if depth > 0 else rng.choice(HOSTILE_STRINGS)
    if kind == 6:
        return [random_json(rng, depth - 1) for _ in range(rng.randint(0, 4))]
    return {random_text(rng, 8): random_json(rng, depth - 1) for _ in range(rng.randint(0, 4))}


# -- valid bodies of each schema ----------------------------------------------------------


def _wifi(rng: random.Random, mac: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"macAddress": mac, "signalStrength": rng.randint(-95, -30)}
    for name, value in (("age", rng.randint(0, 5000)), ("channel", rng.choice((1, 6, 11, 36))),
                        ("frequency", rng.choice((2412, 2437, 5180))),
                        ("signalToNoiseRatio", rng.randint(1, 60)), ("radioType", "802.11n"),
                        ("ssid", rng.choice(("cafe", "home_nomap", "x")))):  # fmt: skip
        if rng.random() < 0.5:
            entry[name] = value
    return entry


def _cell(rng: random.Random, cell: dict[str, Any]) -> dict[str, Any]:
    entry = dict(cell)
    for name, value in (("signalStrength", rng.randint(-120, -50)), ("age", rng.randint(0, 9000)),
                        ("timingAdvance", rng.randint(0, 63)), ("serving", 1),
                        ("primaryScramblingCode", rng.randint(0, 503)), ("asu", 30)):  # fmt: skip
        if rng.random() < 0.3:
            entry[name] = value
    return entry


def _networks(rng: random.Random, site: Site) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if rng.random() < 0.8:
        body["wifiAccessPoints"] = [_wifi(rng, m) for m in site.wifi[: rng.randint(1, 4)]]
    if rng.random() < 0.7:
        cells = [c for c in site.cells if rng.random() < 0.6] or [site.cells[2], site.cells[3]]
        body["cellTowers"] = [_cell(rng, c) for c in cells]
    if rng.random() < 0.4:
        body["bluetoothBeacons"] = [
            {"macAddress": m, "signalStrength": rng.randint(-100, -40), "name": "b"}
            for m in site.blue
        ]
    return body


def locate_body(rng: random.Random, site: Site) -> dict[str, Any]:
    body = _networks(rng, site)
    fallbacks = {"lacf": rng.random() < 0.5, "ipf": rng.random() < 0.5}
    for name, value in (("considerIp", rng.random() < 0.5), ("radioType", "lte"),
                        ("homeMobileCountryCode", 234), ("homeMobileNetworkCode", 30),
                        ("carrier", "Vodafone"), ("fallbacks", fallbacks)):  # fmt: skip
        if rng.random() < 0.3:
            body[name] = value
    return body


SOURCES = ("gnss", "fused", "gps", "fixed", "query", "manual")


def _position(rng: random.Random, site: Site) -> dict[str, Any]:
    position: dict[str, Any] = {"latitude": site.lat, "longitude": site.lon}
    for name, value in (("accuracy", rng.uniform(1, 100)), ("altitude", 30.5),
                        ("altitudeAccuracy", 5.0), ("heading", rng.uniform(0, 360)),
                        ("pressure", 1013.2), ("speed", rng.uniform(0, 40)),
                        ("source", rng.choice(SOURCES)), ("age", 1500)):  # fmt: skip
        if rng.random() < 0.4:
            position[name] = value
    return position


def _v2_report(rng: random.Random, site: Site) -> dict[str, Any]:
    report = {"timestamp": int(time.time() * 1000) - rng.randint(0, 10**7),
              "position": _position(rng, site), **_networks(rng, site)}  # fmt: skip
    if rng.random() < 0.2:
        report["carrier"], report["homeMobileCountryCode"] = "O2", 234
    return report


def geosubmit_v2_body(rng: random.Random, pool: list[Site]) -> dict[str, Any]:
    return {"items": [_v2_report(rng, rng.choice(pool)) for _ in range(rng.randint(1, 3))]}


def geosubmit_v1_body(rng: random.Random, pool: list[Site]) -> dict[str, Any]:
    items = []
    for _ in range(rng.randint(1, 3)):
        report = _v2_report(rng, rng.choice(pool))
        items.append({**report.pop("position"), **report})
    return {"items": items}


def submit_v0_body(rng: random.Random, pool: list[Site]) -> dict[str, Any]:
    items = []
    for _ in range(rng.randint(1, 3)):
        site = rng.choice(pool)
        item: dict[str, Any] = {"lat": site.lat, "lon": site.lon, "accuracy": 10,
                                "time": rng.choice(("2026-12-01T10:00:00.000Z", 1764583200000)),
                                "radio": "gsm"}  # fmt: skip
        item["wifi"] = [{"key": m, "signal": -60, "ssid": "x"} for m in site.wifi[:2]]
        item["cell"] = [{"radio": c["radioType"], "mcc": c["mobileCountryCode"], "mnc": 1,
                         "lac": c["locationAreaCode"], "cid": c.get("cellId", 7), "psc": 3,
                         "asu": 20, "signal": -80, "ta": 1} for c in site.cells[:2]]  # fmt: skip
        item["blue"] = [{"key": m, "signal": -70, "name": "b"} for m in site.blue]
        items.append(item)
    return {"items": items}


def valid_body(endpoint: str, rng: random.Random, pool: list[Site]) -> Any:
    if endpoint in LOCATE:
        return locate_body(rng, rng.choice(pool))
    if endpoint == "/v2/geosubmit":
        return geosubmit_v2_body(rng, pool)
    if endpoint == "/v1/geosubmit":
        return geosubmit_v1_body(rng, pool)
    return submit_v0_body(rng, pool)


# -- mutations ----------------------------------------------------------------------------


def _slots(tree: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) of a JSON tree, found without recursion."""
    slots: list[tuple[Any, Any]] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        keys: Any = node.keys() if isinstance(node, dict) else range(len(node))
        for key in list(keys):
            slots.append((node, key))
            if isinstance(node[key], dict | list) and not isinstance(node[key], Raw):
                stack.append(node[key])
    return slots


def mutate_tree(tree: Any, rng: random.Random, tags: list[str]) -> Any:
    if rng.random() < 0.07:
        tags.append("random-json")
        return random_json(rng, 5)
    if not isinstance(tree, dict | list):
        return tree
    for _ in range(rng.randint(1, 4)):
        slots = _slots(tree)
        if not slots:
            break
        container, key = rng.choice(slots)
        op = rng.choice(("hostile", "hostile", "hostile", "type", "delete", "extra", "empty",
                         "unicode-key"))  # fmt: skip
        tags.append(f"{op}:{key}" if isinstance(key, str) else op)
        if op == "hostile":
            container[key] = hostile(rng)
        elif op == "type":
            container[key] = random_json(rng, 2)
        elif op == "delete":
            del container[key]
        elif op == "extra" and isinstance(container, dict):
            container[random_text(rng, 10)] = hostile(rng)
        elif op == "empty":
            container[key] = rng.choice(([], {}, "", None))
        elif op == "unicode-key" and isinstance(container, dict):
            container[key.upper() if rng.random() < 0.5 else key + "\u200b"] = container.pop(key)
    lists = [(c, k) for c, k in _slots(tree) if isinstance(c[k], list) and c[k]]
    if lists and rng.random() < 0.12:
        # Last, so no later mutation is copied thousands of times: a few thousand
        # entries, up to about the body size limit.
        container, key = rng.choice(lists)
        value = container[key]
        tags.append(f"huge-list:{key}")
        entry_bytes = len(json.dumps(value, default=str)) // len(value) + 1
        length = min(rng.choice((100, 1000, 3000)), 2_500_000 // entry_bytes)
        container[key] = (value * (length // len(value) + 1))[:length]
    return tree


def dumps(tree: Any, rng: random.Random) -> bytes:
    """JSON text with the ``Raw`` tokens put in place."""
    raws: list[str] = []

    def hide(node: Any) -> Any:
        if isinstance(node, Raw):
            raws.append(str(node))
            return f"\x00R{len(raws) - 1}\x00"
        if isinstance(node, dict):
            return {k: hide(v) for k, v in node.items()}
        if isinstance(node, list):
            return [hide(v) for v in node]
        return node

    text = json.dumps(hide(tree), ensure_ascii=rng.random() < 0.5, allow_nan=True)
    for n, raw in enumerate(raws):
        text = text.replace(f'"\\u0000R{n}\\u0000"', raw, 1)
    return text.encode("utf-8", "surrogatepass")


@dataclass
class Case:
    """One request; ``index`` and the seed regenerate it."""

    index: int
    endpoint: str
    method: str
    query: str
    headers: dict[str, str]
    body: bytes
    tags: list[str] = field(default_factory=list)


CONTENT_TYPES = ("application/json; charset=utf-8", "application/json; charset=utf-16",
                 "application/json; charset=latin-1", "application/json; charset=undefined",
                 "application/json; charset=bogus", "application/json; charset=rot13",
                 "application/json; charset=utf-8-sig", "application/json; charset=",
                 "text/plain", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=x", "application/json; charset=idna",
                 "application/json; charset=punycode")  # fmt: skip
ENCODINGS = ("GZIP", "x-gzip", "deflate", "br", "gzip, gzip", "identity", "compress", "")
KEYS = (None, "", "unknown-key-0001", "x" * 41, "a b", "ключ", "%00", "fuzz&key=other", "0" * 4)


@functools.cache
def gzip_bomb() -> bytes:
    """30 MB of JSON whitespace in about 30 kB: past any sane inflate limit."""
    return gzip.compress(b"[" + b" " * 30_000_000 + b"]", compresslevel=9)


def _encode(case: Case, rng: random.Random) -> None:
    """Encoding, header and query mutations of an already serialised body."""
    op = rng.randrange(16)
    body = case.body
    if op == 0:
        case.tags.append("truncated")
        case.body = body[: rng.randrange(max(len(body), 1))]
    elif op == 1:
        case.tags.append("gzip")
        case.body, case.headers["Content-Encoding"] = gzip.compress(body), "gzip"
    elif op == 2:
        case.tags.append("gzip-truncated")
        packed = gzip.compress(body)
        case.body = packed[: rng.randrange(2, max(len(packed), 3))]
        case.headers["Content-Encoding"] = "gzip"
    elif op == 3:
        case.tags.append("gzip-corrupt")
        packed = bytearray(gzip.compress(body))
        for _ in range(rng.randint(1, 8)):
            packed[rng.randrange(len(packed))] = rng.randrange(256)
        case.body, case.headers["Content-Encoding"] = bytes(packed), "gzip"
    elif op == 4:
        case.tags.append("gzip-claimed")
        case.headers["Content-Encoding"] = "gzip"
    elif op == 5 and rng.random() < 0.2:
        case.tags.append("gzip-bomb")
        case.body, case.headers["Content-Encoding"] = gzip_bomb(), "gzip"
    elif op == 5:
        case.tags.append("gzip-trailing-garbage")
        case.body = gzip.compress(body) + rng.randbytes(rng.randint(1, 40))
        case.headers["Content-Encoding"] = "gzip"
    elif op == 6:
        encoding = rng.choice(ENCODINGS)
        case.tags.append(f"encoding:{encoding}")
        case.headers["Content-Encoding"] = encoding
        if rng.random() < 0.5:
            case.body = gzip.compress(body)
    elif op == 7:
        content_type = rng.choice(CONTENT_TYPES)
        case.tags.append(f"content-type:{content_type}")
        case.headers["Content-Type"] = content_type
        if "utf-16" in content_type and rng.random() < 0.7:
            case.body = body.decode("utf-8", "surrogatepass").encode("utf-16", "surrogatepass")
    elif op == 8:
        case.tags.append("bom")
        case.body = b"\xef\xbb\xbf" + body
    elif op == 9:
        case.tags.append("latin-1")
        case.body = body.decode("utf-8", "replace").encode("latin-1", "replace") + b"\xff\xfe"
    elif op == 10:
        case.tags.append("empty-body")
        case.body = b""
    elif op == 11:
        case.tags.append("garbage")
        case.body = rng.randbytes(rng.randint(1, 300))
    elif op == 12:
        key = rng.choice(KEYS)
        case.tags.append(f"key:{key!r}")
        case.query = "" if key is None else f"key={key}"
    elif op == 13:
        method = rng.choice(("GET", "HEAD", "PUT", "OPTIONS"))
        case.tags.append(f"method:{method}")
        case.method = method
    # 14, 15: no encoding mutation


def make_case(seed: int, index: int, pool: list[Site], key: str = KEY) -> Case:
    """Case ``index`` of ``seed``: always the same request."""
    rng = random.Random(f"{seed}:{index}")
    endpoint = ENDPOINTS[index % len(ENDPOINTS)]
    tags: list[str] = []
    tree = valid_body(endpoint, rng, pool)
    if rng.random() < 0.85:
        tree = mutate_tree(tree, rng, tags)
    headers = {"Content-Type": "application/json"}
    case = Case(index, endpoint, "POST", f"key={key}", headers, dumps(tree, rng), tags)
    if rng.random() < 0.4:
        _encode(case, rng)
    return case


def cases(seed: int, start: int, count: int, pool: list[Site], key: str) -> Iterator[Case]:
    for index in range(start, start + count):
        yield make_case(seed, index, pool, key)


# -- results ------------------------------------------------------------------------------


@dataclass
class Tally:
    """Status counts per endpoint; ``failures`` are the cases that answered 5xx or broke."""

    statuses: dict[str, Counter[str]] = field(default_factory=dict)
    # (case, outcome, what the server raised when known)
    failures: list[tuple[Case, str, str]] = field(default_factory=list)
    # "<type> at <last frame>" -> count, and one message of each
    tracebacks: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, case: Case, outcome: str, detail: str = "") -> None:
        self.statuses.setdefault(case.endpoint, Counter())[outcome] += 1
        if not outcome.isdigit() or outcome.startswith("5"):
            self.failures.append((case, outcome, detail))

    def traceback(self, where: str, message: str) -> None:
        self.tracebacks[where] += 1
        self.examples.setdefault(where, message)

    @property
    def server_errors(self) -> int:
        """The 500 answers (what the fuzz run must never see)."""
        return self.count("500")

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.statuses.values())

    def count(self, outcome: str) -> int:
        return sum(c[outcome] for c in self.statuses.values())

    def summary(self) -> str:
        lines = [f"{self.total} requests"]
        for endpoint in ENDPOINTS:
            counts = self.statuses.get(endpoint, Counter())
            text = ", ".join(f"{status}: {n}" for status, n in sorted(counts.items()))
            lines.append(f"  {endpoint:14} {sum(counts.values()):7}  {text}")
        lines.append(f"500s: {self.server_errors}")
        lines.append(f"failures (5xx or broken connection): {len(self.failures)}")
        if self.tracebacks:
            lines.append("distinct tracebacks (type at last frame: first message):")
        for where, n in self.tracebacks.most_common():
            lines.append(f"  {n:6} x {where}: {self.examples[where][:150]}")
        return "\n".join(lines)


def save_failures(tally: Tally, directory: Path, seed: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for case, outcome, detail in tally.failures:
        stem = directory / f"{seed}-{case.index}"
        stem.with_suffix(".body").write_bytes(case.body)
        meta = {k: v for k, v in asdict(case).items() if k != "body"}
        meta.update(outcome=outcome, raised=detail, seed=seed, body_bytes=len(case.body))
        stem.with_suffix(".json").write_text(json.dumps(meta, indent=1, ensure_ascii=False))


# -- running ------------------------------------------------------------------------------


def _url(case: Case) -> str:
    return f"{case.endpoint}?{case.query}" if case.query else case.endpoint


def _progress(done: int, count: int, tally: Tally, started: float) -> None:
    rate = done / max(time.monotonic() - started, 1e-9)
    print(f"\r{done}/{count} bodies, {rate:.0f}/s, {len(tally.failures)} failures",
          end="", file=sys.stderr, flush=True)  # fmt: skip


class _Logged(logging.Handler):
    """Collects the exceptions the app logs in process, until ``take`` is called."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.seen.append(record.exc_info[1])

    def take(self) -> list[BaseException]:
        seen, self.seen = self.seen, []
        return seen


def _place(path: str, line: object, function: str) -> str:
    return f"{path.split('site-packages/')[-1].split('ichnaea/')[-1]}:{line} {function}"


def where(exc: BaseException) -> str:
    """``<type> at <file>:<line> <function>``: the innermost frame of our package."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/ichnaea/" in f.filename] or frames
    place = _place(ours[-1].filename, ours[-1].lineno, ours[-1].name) if ours else "?"
    return f"{type(exc).__name__} at {place}"


def run_in_process(
    client: Any,
    seed: int,
    start: int,
    count: int,
    pool: list[Site],
    *,
    key: str = KEY,
    quiet: bool = False,
) -> Tally:
    """Send the cases through a Starlette ``TestClient`` (``raise_server_exceptions=True``).

    An exception that escapes the app counts as a 500 and its traceback is
    kept, as is every exception the app logs itself.
    """
    tally = Tally()
    logged = _Logged()
    logging.getLogger().addHandler(logged)
    started = time.monotonic()
    try:
        for done, case in enumerate(cases(seed, start, count, pool, key), 1):
            raised = []
            try:
                response = client.request(
                    case.method, _url(case), content=case.body, headers=case.headers
                )
                outcome = str(response.status_code)
            except Exception as exc:  # an escaped server error: counted, never hidden
                outcome = "500"
                raised.append(exc)
            raised += [exc for exc in logged.take() if all(exc is not r for r in raised)]
            for exc in raised:
                tally.traceback(where(exc), str(exc))
            tally.add(case, outcome, "; ".join(f"{where(e)}: {str(e)[:300]}" for e in raised))
            if not quiet and done % 500 == 0:
                _progress(done, count, tally, started)
    finally:
        logging.getLogger().removeHandler(logged)
    if not quiet:
        print(file=sys.stderr)
    return tally


async def run_http(
    url: str, seed: int, start: int, count: int, pool: list[Site], concurrency: int, key: str
) -> Tally:
    """Send the cases over ``concurrency`` keep-alive connections."""
    tally = Tally()
    queue = iter(cases(seed, start, count, pool, key))
    started = time.monotonic()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def work() -> None:
            for case in queue:
                try:
                    response = await client.request(
                        case.method, _url(case), content=case.body, headers=case.headers
                    )
                    outcome = str(response.status_code)
                except httpx.TransportError as exc:
                    outcome = f"error:{type(exc).__name__}"
                tally.add(case, outcome)
                if tally.total % 1000 == 0:
                    _progress(tally.total, count, tally, started)

        await asyncio.gather(*(work() for _ in range(concurrency)))
    print(file=sys.stderr)
    return tally


# -- a server of our own ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ichnaea(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "ichnaea", *args], capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    if check and result.returncode != 0:
        raise SystemExit(f"ichnaea {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result


def start_server(port: int, processes: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "ichnaea", "web", "--port", str(port),
             "--processes", str(processes)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"ichnaea web exited:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/__lbheartbeat__", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.25)
    server.kill()
    raise SystemExit(f"ichnaea web did not come up:\n{log.read_text()}")


def teach(client: Any, pool: list[Site], key: str) -> None:
    """Submit the pool's reports and run the pipeline once, so locate bodies find stations."""
    response = client.post(f"/v2/geosubmit?key={key}", json={"items": teach_reports(pool)})
    response.raise_for_status()
    ichnaea("process", "--quiet")


_FRAME = re.compile(r'^\s+File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)')
_EXCEPTION = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\w*)(: .*)?$")
_RECORD = re.compile(r"^\d{4}-\d\d-\d\dT\S+\s+[A-Z]+\s+\[[^\]]*\] (?P<logger>[\w.]+): ")
_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")


def log_tracebacks(text: str) -> list[tuple[str, str]]:
    """The tracebacks of a server log as ("<type> at <frame> (<logger>)", exception line).

    A chained traceback counts once, by its last exception; the frame is
    the innermost one of our package. The logger tells an error our own
    handler answered (``ichnaea.web.errors``) from one re-raised into the
    server (``uvicorn.error``), which closes the connection.
    """
    found: list[tuple[str, str]] = []
    logger, frame, pending = "?", "?", None
    for line in text.splitlines():
        if record := _RECORD.match(line):
            if pending:
                found.append(pending)
            logger, pending = record["logger"], None
        elif line.startswith("Traceback (most recent call last)"):
            frame = "?"
        elif line.startswith(_CHAINED):
            pending = None
        elif match := _FRAME.match(line):
            if "/ichnaea/" in match["file"] or frame == "?":
                frame = _place(match["file"], match["line"], match["func"])
        elif match := _EXCEPTION.match(line):
            pending = (f"{match['type'].split('.')[-1]} at {frame} ({logger})", line)
    if pending:
        found.append(pending)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100_000, help="bodies to send")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=int, default=0, help="index of the first case")
    parser.add_argument("--only", type=int, help="print case ONLY of the seed and send it alone")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--url", help="a running server (else: in process)")
    target.add_argument("--serve", action="store_true", help="start `ichnaea web` here")
    parser.add_argument("--key", default=KEY, help="API key with locate and region allowed")
    parser.add_argument("--processes", type=int, default=2, help="web processes with --serve")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections")
    parser.add_argument("--failures", type=Path, default=Path("fuzz-failures"))
    parser.add_argument("--log", type=Path, default=Path("fuzz-server.log"))
    parser.add_argument("--no-teach", action="store_true", help="skip teaching the pool")
    args = parser.parse_args()

    key = args.key
    pool = make_pool()
    if args.only is not None:
        case = make_case(args.seed, args.only, pool, key)
        print(json.dumps({k: v for k, v in asdict(case).items() if k != "body"}, indent=1))
        print(case.body[:2000])
        args.start, args.count = args.only, 1

    server = None
    if not args.url:  # our own server or app: make sure the key exists (it may already)
        ichnaea("apikey", "create", key, "--maxreq", "0", check=False)
    if args.serve:
        port = free_port()
        server = start_server(port, args.processes, args.log)
        args.url = f"http://127.0.0.1:{port}"
    try:
        if args.url:
            if not args.no_teach and args.only is None:
                with httpx.Client(base_url=args.url) as client:
                    teach(client, pool, key)
            tally = asyncio.run(
                run_http(args.url, args.seed, args.start, args.count, pool, args.concurrency, key)
            )
        else:
            from starlette.testclient import TestClient

            from ichnaea.config import load_settings
            from ichnaea.web.app import create_app

            app = create_app(load_settings())
            with TestClient(app) as client:
                if not args.no_teach and args.only is None:
                    teach(client, pool, key)
                tally = run_in_process(client, args.seed, args.start, args.count, pool, key=key)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    if server is not None:
        for place, message in log_tracebacks(args.log.read_text(errors="replace")):
            tally.traceback(place, message)
    if tally.failures:
        save_failures(tally, args.failures, args.seed)
        print(f"failed requests saved in {args.failures}/", file=sys.stderr)
    print(tally.summary())
    sys.exit(1 if tally.failures else 0)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
