"""``gather_stations`` against its pure-NumPy reference, and ``locate_macs`` and
``locate_cells`` against the kernels they fuse, over random records and queries."""

from __future__ import annotations

import random

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from ichnaea._fast import (
    aggregate_cell_groups,
    aggregate_cluster,
    cluster_complete_linkage,
    gather_stations,
    locate_cells,
    locate_macs,
    order_groups,
)
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


def _clustered(rng: random.Random, records: np.ndarray) -> np.ndarray:
    """The records moved near a few centres (tens of metres apart) or, some, far away."""
    raw = records.view(ref._STATION_RECORD).copy()
    centres = [(rng.uniform(-60, 60), rng.uniform(-170, 170)) for _ in range(3)]
    for i in range(len(raw)):
        lat, lon = rng.choice(centres)
        if rng.random() < 0.15:
            lat, lon = rng.uniform(-80, 80), rng.uniform(-179, 179)
        raw[i]["lat"] = round((lat + rng.gauss(0, 0.0015)) * 1e7)
        raw[i]["lon"] = round((lon + rng.gauss(0, 0.0015)) * 1e7)
    return raw.view(np.uint8)


def _composed(args, signal, age, limit, sample, low, high):  # type: ignore[no-untyped-def]
    """locate_macs as the separate kernels compute it, one after the other."""
    out, at, _, _ = _kernel(args)
    if out.shape[1] < 2:
        return []
    lat, lon, radius, score = out[0].copy(), out[1].copy(), out[2].copy(), out[8].copy()
    labels = np.empty(len(lat), dtype=np.int64)
    n_groups = cluster_complete_linkage(lat, lon, limit, labels)
    members, ends = np.empty(len(lat), dtype=np.int64), np.empty(n_groups, dtype=np.int64)
    kept = order_groups(labels, n_groups, 2, members, ends)
    clusters, start = [], 0
    for end in ends[:kept]:
        rows = members[start:end]
        mask = np.empty(len(rows), dtype=np.uint8)
        position = aggregate_cluster(
            lat[rows], lon[rows], age[at[rows]], signal[at[rows]], score[rows], radius[rows],
            sample, low, high, mask,
        )  # fmt: skip
        used = [(int(at[r]), bool(out[6, r] >= TODAY)) for r in rows[mask.astype(bool)]]
        clusters.append((*position, used))
        start = end
    return clusters


@pytest.mark.parametrize("seed", range(12))
def test_locate_macs_is_gather_cluster_and_aggregate_in_one_call(seed: int) -> None:
    rng = random.Random(seed)
    query, width, base_keys, base_values, over_keys, over_values, present = _case(
        rng, 6, base_n=rng.randint(0, 200), over_n=rng.randint(0, 30), query_n=rng.randint(0, 40)
    )
    args = (
        query, width, base_keys, _clustered(rng, base_values),
        over_keys, _clustered(rng, over_values), present,
    )  # fmt: skip
    n = len(query) // 6
    signal = np.array([rng.choice([-100.0, rng.uniform(-95, -30)]) for _ in range(n)])
    age = np.array([rng.choice([1000.0, rng.uniform(1000, 60_000)]) for _ in range(n)])
    limit, sample = rng.choice([(500.0, 20), (100.0, 10), (500.0, 3)])
    got = locate_macs(
        query, signal, age, *args[2:], TODAY, NOW_S, limit, sample, 10.0, 500.0
    )  # fmt: skip
    want = _composed(args, signal, age, limit, sample, 10.0, 500.0)
    assert got == want
    if seed == 0:
        assert any(len(cluster[4]) >= 2 for cluster in got)  # the case holds clusters


def test_locate_macs_refuses_inconsistent_inputs() -> None:
    empty = np.zeros(0, dtype=np.uint8)
    tables = (empty, empty, empty, empty, empty)
    params = (TODAY, NOW_S, 500.0, 20, 10.0, 500.0)
    two = np.zeros(2)
    with pytest.raises(ValueError, match="whole number of MACs"):
        locate_macs(b"\0" * 7, two, two, *tables, *params)
    with pytest.raises(ValueError, match="must hold 2 values"):
        locate_macs(b"\0" * 12, np.zeros(1), two, *tables, *params)
    with pytest.raises(ValueError, match="differ in count"):
        locate_macs(b"\0" * 12, two, two, np.zeros(8, np.uint8), *tables[1:], *params)
    with pytest.raises(ValueError, match="max_networks"):
        locate_macs(b"\0" * 12, two, two, *tables, TODAY, NOW_S, 500.0, 0, 10.0, 500.0)
    assert locate_macs(b"\0" * 12, two, two, *tables, *params) == []


def _cell_case(rng: random.Random):  # type: ignore[no-untyped-def]
    """Cell keys of 11 bytes (area prefix 7) and NR keys of 17 (prefix 9), zero-padded
    to 17, from a few areas each; records near a few centres, some radii NULL."""
    areas = [bytes([2]) + rng.randbytes(6) for _ in range(3)]
    areas += [bytes([5]) + rng.randbytes(8) for _ in range(2)]
    keys = set()
    for _ in range(rng.randint(0, 60)):
        area = rng.choice(areas)
        cid = rng.randbytes(4 if len(area) == 7 else 8)
        keys.add((area + cid).ljust(17, b"\0"))
    ordered = sorted(keys)
    base = sorted(rng.sample(ordered, len(ordered) * 2 // 3))
    over = sorted(rng.sample(ordered, len(ordered) // 4))
    records = _clustered(rng, _records(rng, len(base)).view(np.uint8))
    over_records = _clustered(rng, _records(rng, len(over)).view(np.uint8))
    picks = sorted(set(rng.sample(ordered, min(len(ordered), rng.randint(0, 12)))))
    floor = np.array([-140.0 if key[0] == 2 else -156.0 for key in picks])
    tables = (
        np.frombuffer(b"".join(base), np.uint8).copy(),
        records,
        np.frombuffer(b"".join(over), np.uint8).copy(),
        over_records,
        np.array([rng.random() < 0.8 for _ in over], dtype=np.uint8),
    )
    return b"".join(picks), floor, tables


@pytest.mark.parametrize("seed", range(12))
def test_locate_cells_is_gather_and_group_in_one_call(seed: int) -> None:
    rng = random.Random(seed)
    query, floor, tables = _cell_case(rng)
    n = len(query) // 17
    signal = np.array([rng.uniform(-120, -60) for _ in range(n)])
    age = np.array([rng.choice([1000.0, rng.uniform(1000, 60_000)]) for _ in range(n)])
    bounds = (1000.0, 50_000.0, 1000.0, 100_000.0)  # radius, then accuracy
    got = locate_cells(query, 17, floor, signal, age, *tables, TODAY, NOW_S, *bounds)
    out, at, _, _ = _kernel((query, 17, *tables))
    want = []
    if len(at):
        group = np.empty(len(at), dtype=np.int64)
        found = aggregate_cell_groups(
            out[0], out[1], out[2], age[at], signal[at], floor[at], out[8], *bounds, group,
        )  # fmt: skip
        for g, position in enumerate(found):
            rows = np.flatnonzero(group == g)
            want.append((*position, [(int(at[r]), bool(out[6, r] >= TODAY)) for r in rows]))
    assert got == want
    if seed == 4:
        assert any(len(found[4]) >= 3 for found in got)  # the case holds groups of several cells


def test_locate_cells_refuses_inconsistent_inputs() -> None:
    empty = np.zeros(0, dtype=np.uint8)
    tables = (empty, empty, empty, empty, empty)
    params = (TODAY, NOW_S, 1000.0, 50_000.0, 1000.0, 100_000.0)
    one = np.zeros(1)
    with pytest.raises(ValueError, match="whole number of keys"):
        locate_cells(b"\0" * 16, 17, one, one, one, *tables, *params)
    with pytest.raises(ValueError, match="must hold 1 values"):
        locate_cells(b"\0" * 17, 17, np.zeros(0), one, one, *tables, *params)
    assert locate_cells(b"\0" * 17, 17, one, one, one, *tables, *params) == []
