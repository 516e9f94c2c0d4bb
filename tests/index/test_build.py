"""Building the station index: global key order, one build per host under the lock."""

from __future__ import annotations

import multiprocessing
import random
from collections.abc import Iterator
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from ichnaea.index.build import LOCK_NAME, build_index, ensure_index
from ichnaea.index.format import KINDS, file_name
from ichnaea.index.reader import open_index
from ichnaea.repositories.session import create_engine
from tests.index._stations import remove_stations, seed_stations


@pytest.fixture
def sqlite_engine(migrated_sqlite_url: str) -> Iterator[Engine]:
    engine = create_engine(migrated_sqlite_url, pooled=False)
    remove_stations(engine)
    try:
        seed_stations(engine, random.Random(5))
        yield engine
    finally:
        remove_stations(engine)
        engine.dispose()


def test_build_writes_every_kind_in_strict_key_order_across_shards(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    # Pages and chunks far smaller than a table, so the merge of the 16
    # shard streams and the chunk boundaries are exercised.
    generation = build_index(sqlite_engine, tmp_path, page_rows=7, chunk_rows=11)
    index = open_index(tmp_path)
    assert index.generation == generation
    for kind in KINDS:
        keys, values = index.columns(kind)
        assert len(keys) == len(values) > 20, kind
        assert bool(np.all(keys[1:] > keys[:-1])), kind
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(file_name(k) for k in KINDS)


def test_ensure_index_maps_an_existing_index_without_rebuilding(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    first = ensure_index(sqlite_engine, tmp_path)
    second = ensure_index(sqlite_engine, tmp_path)
    assert second.generation == first.generation


def _ensure_in_child(
    url: str, directory: str, waiting: Event, go: Event, results: Queue[int]
) -> None:
    engine = create_engine(url, pooled=False)
    try:
        waiting.set()
        go.wait(60)
        results.put(ensure_index(engine, Path(directory)).generation)
    finally:
        engine.dispose()


def test_two_processes_asked_to_build_at_once_build_once(
    sqlite_engine: Engine, migrated_sqlite_url: str, tmp_path: Path
) -> None:
    context = multiprocessing.get_context("spawn")
    results: Queue[int] = context.Queue()
    waiting = [context.Event(), context.Event()]
    go = context.Event()
    children = [
        context.Process(
            target=_ensure_in_child,
            args=(migrated_sqlite_url, str(tmp_path), event, go, results),
        )
        for event in waiting
    ]
    for child in children:
        child.start()
    # Both children are started (spawning takes a while) before either asks,
    # then they ask at the same moment.
    for event in waiting:
        assert event.wait(60)
    go.set()
    generations = [results.get(timeout=120) for _ in children]
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    # Each build takes a new generation id: one id means one build.
    assert generations[0] == generations[1]
    assert open_index(tmp_path).generation == generations[0]
    assert (tmp_path / LOCK_NAME).exists()
