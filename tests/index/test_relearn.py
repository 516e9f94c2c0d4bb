"""A relearned station is answered again, by the database path and the index alike.

Decision (issue 11): a blocked station that GNSS observations have given a
position again since its block, ``RELEARN_SAMPLES`` of them, and that was
blocked at most ``MAX_RELEARN_BLOCKS`` times, is not blocked
(ichnaea/repositories/stations.py ``relearned``; the pipeline's side is in
tests/pipeline/stations/test_station_plan.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ichnaea import _fast
from ichnaea._fast import reference
from ichnaea.codecs import mac_shard_id
from ichnaea.index.build import build_index
from ichnaea.index.reader import open_index
from ichnaea.models.station import WIFI_SHARDS
from ichnaea.repositories.stations import (
    MAX_RELEARN_BLOCKS,
    RELEARN_SAMPLES,
    TEMPORARY_BLOCK_DAYS,
    StationReader,
    fetch_macs,
)
from tests.index._stations import NOW, TODAY, remove_stations

# (samples, block_count, block_last days ago, created days ago) -> answered?
CASES = {
    "a0a0a0000001": ((10, 1, 0, 5), True),  # relearned the day it moved
    "a0a0a0000002": ((9, 1, 0, 5), False),  # one observation short
    "a0a0a0000003": ((10, 3, 0, 200), False),  # moved three times: stays blocked
    "a0a0a0000004": ((10, None, 0, 5), True),  # a NULL count counts as 0
    "a0a0a0000005": ((9, 1, 5, 10), False),  # young: the age rule blocks it
    "a0a0a0000006": ((20, 2, 5, 10), True),  # ... unless relearned
    "a0a0a0000007": ((None, 1, 0, 5), False),  # no samples known
    "a0a0a0000008": ((3, None, None, 5), True),  # never blocked
}


@pytest.fixture
def stations(db_engine: Engine) -> Iterator[list[bytes]]:
    remove_stations(db_engine)
    rows = []
    for mac, ((samples, count, blocked_ago, created_ago), _) in CASES.items():
        shard = WIFI_SHARDS[mac_shard_id(mac)]
        rows.append(shard(
            mac=bytes.fromhex(mac), lat=51.5, lon=-0.1, radius=50, region="GB",
            samples=samples, created=NOW - timedelta(days=created_ago), modified=NOW,
            last_seen=TODAY,
            block_last=None if blocked_ago is None else TODAY - timedelta(days=blocked_ago),
            block_count=count,
        ))  # fmt: skip
    with Session(db_engine) as session, session.begin():
        session.add_all(rows)
    try:
        yield [bytes.fromhex(mac) for mac in CASES]
    finally:
        remove_stations(db_engine)


def test_the_index_kernel_and_its_reference_keep_the_same_block_rule() -> None:
    assert _fast.block_rule() == (TEMPORARY_BLOCK_DAYS, RELEARN_SAMPLES, MAX_RELEARN_BLOCKS)
    assert (reference.RELEARN_SAMPLES, reference.MAX_RELEARN_BLOCKS) == (
        RELEARN_SAMPLES,
        MAX_RELEARN_BLOCKS,
    )


def test_relearned_stations_are_answered_by_both_paths(
    db_engine: Engine, stations: list[bytes], tmp_path: Path
) -> None:
    expected = sorted(bytes.fromhex(mac) for mac, (_, answered) in CASES.items() if answered)
    with StationReader(db_engine) as reader:
        from_db = fetch_macs(reader, "wifi", stations, today=TODAY)
    build_index(db_engine, tmp_path)
    from_index = open_index(tmp_path).macs("wifi", stations, today=TODAY)
    assert sorted(from_db.keys) == expected
    assert sorted(from_index.keys) == expected
