"""``gather_stations`` against its pure-NumPy reference, over random records and queries."""

from __future__ import annotations

import random

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from ichnaea._fast import gather_stations
from ichnaea._fast import reference as ref
from ichnaea.index.format import STATION_VALUES

RECORD = 29
TODAY = 740_000.0  # a proleptic ordinal (2027)
NOW_S = (TODAY - 719_163) * 86400.0 + 43_210.5
EPOCH = 719_163


def _records(rng: random.Random, count: int) -> np.ndarray:
    raw = np.zeros(count, dtype=ref._STATION_RECORD)
    for i in range(count):
        raw[i]["lat"] = rng.randint(-900_000_000, 900_000_000)
        raw[i]["lon"] = rng.randint(-1_800_000_000, 1_800_000_000)
        raw[i]["radius"] = rng.choice([0xFFFFFFFF, rng.randint(0, 50_000)])
        raw[i]["samples"] = rng.choice([0xFFFFFFFF, rng.randint(0, 10_000)])
        created = int(TODAY) - EPOCH - rng.randint(0, 900)
        raw[i]["created"] = rng.choice([0xFFFF, created])
        raw[i]["modified"] = rng.choice([0xFFFFFFFF, rng.randint(0, 2**32 - 2)])
        raw[i]["last_seen"] = rng.choice([0xFFFF, int(TODAY) - EPOCH - rng.randint(0, 60)])
        block_ago = rng.choice([None, 0, 1, 2, 3, 45, 300])
        raw[i]["block_last"] = 0xFFFF if block_ago is None else int(TODAY) - EPOCH - block_ago
        raw[i]["block_count"] = rng.choice([0, 0, 1, 2, 15, 255])
        raw[i]["region"] = rng.randint(0, 5)
    return raw


def _column(rng: random.Random, width: int, count: int) -> tuple[list[bytes], np.ndarray]:
    """Sorted unique keys (as the query gives them) and the key column bytes."""
    keys = sorted({rng.randbytes(width) for _ in range(count)})
    if width == 6:
        # Some MACs end in zero bytes; the column holds little-endian uint64.
        keys = sorted({k[:5] + b"\0" if rng.random() < 0.2 else k for k in keys})
        column = np.array([int.from_bytes(k, "big") for k in keys], dtype="<u8")
    else:
        column = np.frombuffer(b"".join(keys), dtype=np.uint8).copy()
    return keys, column.view(np.uint8)


def _case(rng: random.Random, width: int, base_n: int, over_n: int, query_n: int):  # type: ignore[no-untyped-def]
    base_keys, base_column = _column(rng, width, base_n)
    over_keys = sorted(
        set(rng.sample(base_keys, min(over_n // 2, len(base_keys))))
        | {rng.randbytes(width) for _ in range(over_n - over_n // 2)}
    )
    if width == 6:
        over_column = np.array([int.from_bytes(k, "big") for k in over_keys], dtype="<u8")
        over_column = over_column.view(np.uint8)
    else:
        over_column = np.frombuffer(b"".join(over_keys), dtype=np.uint8).copy()
    known = base_keys + over_keys
    picks = [*rng.sample(known, min(query_n, len(known))), rng.randbytes(width)]
    query = b"".join(sorted(set(picks)))
    return (
        query,
        width,
        base_column,
        _records(rng, len(base_keys)).view(np.uint8),
        over_column,
        _records(rng, len(over_keys)).view(np.uint8),
        np.array([rng.random() < 0.8 for _ in over_keys], dtype=np.uint8),
    )


def _kernel(args, *, read_only: bool = False):  # type: ignore[no-untyped-def]
    query, width, *arrays = args
    if read_only:
        for array in arrays:
            array.setflags(write=False)
    n = len(query) // width
    out = np.empty((9, n))
    at = np.empty(n, dtype=np.int64)
    region = np.empty(n, dtype=np.int32)
    source = np.empty(n, dtype=np.int8)
    rows = gather_stations(query, width, *arrays, TODAY, NOW_S, out, at, region, source)
    return out[:, :rows], at[:rows], region[:rows], source[:rows]


@pytest.mark.parametrize("width", [6, 17, 9])
@pytest.mark.parametrize("seed", range(5))
def test_gather_stations_matches_the_reference(width: int, seed: int) -> None:
    rng = random.Random(seed)
    args = _case(rng, width, base_n=rng.randint(0, 300), over_n=rng.randint(0, 40), query_n=25)
    got = _kernel(args, read_only=seed % 2 == 0)
    want = ref.gather_stations(*args, TODAY, NOW_S)
    for have, expected in zip(got, want, strict=True):
        assert_array_equal(have, expected)  # NaN equals NaN here


def test_gather_stations_with_nothing_to_find() -> None:
    empty = np.zeros(0, dtype=np.uint8)
    got = _kernel((b"", 6, empty, empty, empty, empty, empty))
    assert got[0].shape == (9, 0)
    assert [len(part) for part in got[1:]] == [0, 0, 0]


def test_gather_stations_refuses_inconsistent_inputs() -> None:
    empty = np.zeros(0, dtype=np.uint8)
    outs = (np.empty((9, 1)), np.empty(1, np.int64), np.empty(1, np.int32), np.empty(1, np.int8))
    keys = np.zeros(8, dtype=np.uint8)
    no_overlay = (empty, empty, empty)
    with pytest.raises(ValueError, match="differ in count"):
        gather_stations(b"\0" * 6, 6, keys, empty, *no_overlay, TODAY, NOW_S, *outs)
    with pytest.raises(ValueError, match="whole number of keys"):
        gather_stations(b"\0" * 7, 6, empty, empty, *no_overlay, TODAY, NOW_S, *outs)
    with pytest.raises(ValueError, match="out must have shape"):
        gather_stations(b"\0" * 12, 6, empty, empty, *no_overlay, TODAY, NOW_S, *outs)
    # The reference keeps its own copy of the record (it imports only NumPy).
    assert ref._STATION_RECORD == STATION_VALUES
    assert STATION_VALUES.itemsize == RECORD
