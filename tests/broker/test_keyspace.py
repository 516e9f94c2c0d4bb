"""Every Redis key is built and parsed in ichnaea.broker.keyspace, and tagged for Redis Cluster."""

from __future__ import annotations

import ast
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

from ichnaea.broker import keyspace
from ichnaea.broker.reliable import ReliableQueue, SerialQueue
from ichnaea.codecs import DATAMAP_SHARD_IDS, MAC_SHARD_IDS
from ichnaea.worker.jobs import station_queues

PACKAGE = Path(keyspace.__file__).resolve().parent.parent
DAY = date(2026, 12, 7)

QUEUES = [
    keyspace.INCOMING,
    keyspace.CELL_AREAS,
    keyspace.export_queue("internal"),
    keyspace.export_partition("backup", "gnss", "test"),
    keyspace.export_partition("backup", "query", None),
    *(keyspace.station_queue("wifi", shard) for shard in MAC_SHARD_IDS),
    *(keyspace.station_queue("cell", radio) for radio in ("gsm", "wcdma", "lte", "nr")),
    *(keyspace.datamap_queue(shard) for shard in DATAMAP_SHARD_IDS),
    "queue_export_{odd}:gnss:no_key",  # a name that carries a tag of its own
]


def slot(key: str) -> int:
    return int(key_slot(key.encode()))


def test_queues_keep_the_original_names() -> None:
    assert keyspace.station_queue("wifi", "a") == "update_wifi_a"
    assert keyspace.station_queue("cell", "lte") == "update_cell_lte"
    assert keyspace.datamap_queue("ne") == "update_datamap_ne"
    assert keyspace.export_queue("internal") == "queue_export_internal"
    assert keyspace.export_partition("s3", "gnss", None) == "queue_export_s3:gnss:no_key"
    assert keyspace.api_limit("test", "v1.geolocate", DAY) == "apilimit:test:v1.geolocate:20261207"
    assert keyspace.api_users("locate", "test", DAY) == "apiuser:locate:test:2026-12-07"
    assert keyspace.stat_counter("unique_wifi", DAY) == "statcounter_unique_wifi_20261207"


@pytest.mark.parametrize("queue", QUEUES)
def test_keys_that_meet_their_queue_share_its_cluster_slot(queue: str) -> None:
    reliable, serial = ReliableQueue(None, queue), SerialQueue(None, queue)  # type: ignore[arg-type]
    together = [
        reliable.processing_key("host:1:2"),
        reliable.lease_key("host:1:2"),
        reliable.consumers_key,
        serial.inflight_key,
        serial.batch_id_key,
        serial.lease_key,
        keyspace.since(queue),
        keyspace.undecodable(queue),
        keyspace.failures(queue, "batch:1"),
        keyspace.dead_letter(queue),
    ]
    assert {slot(key) for key in together} == {slot(queue)}
    assert keyspace.queue_of_dead_letter(keyspace.dead_letter(queue)) == queue


def test_names_parse_back() -> None:
    partition = keyspace.export_partition("backup", "query", "k-1")
    assert keyspace.parse_export_queue(partition) == ("backup", "query", "k-1")
    assert keyspace.parse_export_queue(keyspace.export_partition("b", "gnss", None)) == (
        "b",
        "gnss",
        None,
    )
    assert keyspace.parse_export_queue("queue_export_internal") == ("internal", None, None)
    assert keyspace.parse_api_limit(keyspace.api_limit("a-b", "v1.geolocate", DAY)) == (
        "a-b",
        "v1.geolocate",
        "20261207",
    )
    assert keyspace.parse_api_users(keyspace.api_users("region", "a-b", DAY)) == (
        "region",
        "a-b",
        DAY,
    )
    with pytest.raises(ValueError):
        keyspace.parse_api_users("apiuser:locate:test:20261207")
    assert keyspace.parse_stat_counter(keyspace.stat_counter("unique_cell", DAY)) == (
        "unique_cell",
        "20261207",
    )
    assert keyspace.data_type(keyspace.CELL_AREAS) == "cellarea"
    assert keyspace.data_type(keyspace.station_queue("cell", "lte")) == "cell"
    assert keyspace.data_type("something_else") == "other"


# Literals that would name a key if another module built one. Job names
# (``Job("update_incoming", ...)``) are task names, not keys.
KEY_SHAPES = (
    "update_",
    "queue_export",
    "apilimit",
    "apiuser",
    "statcounter_",
    "scheduler:",
    "rate_controller_",
    "station_changes",
    "dead_letter:",
    "export_partitions",
    "global_locate_sample_rate",
    "cache:",
    "fallback_ratelimit:",
    "apikey:",
)
KEY_SUFFIXES = (":undecodable", ":since", ":processing", ":inflight", ":consumers", ":lease")


def key_literals(path: Path) -> list[tuple[int, str]]:
    """(line, text) of string literals shaped like a Redis key, outside docstrings and Job()."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            skip.add(id(body[0].value))  # docstrings
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Job":
            skip.update(id(arg) for arg in node.args[:1])
        if isinstance(node, ast.JoinedStr):
            skip.update(id(part) for part in node.values)  # judged whole, below
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        text = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(
                part.value if isinstance(part, ast.Constant) else "{}" for part in node.values
            )
        if text is None or any(c.isspace() for c in text):  # keys hold no blanks; messages do
            continue
        if text.startswith(KEY_SHAPES) or any(s in text for s in KEY_SUFFIXES):
            found.append((node.lineno, text))
    return found


def test_no_other_module_spells_a_key() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).as_posix()
        if relative == "ichnaea/broker/keyspace.py":
            continue
        offenders += [f"{relative}:{line}: {text!r}" for line, text in key_literals(path)]
    assert offenders == []


def test_the_rule_finds_a_key_spelled_elsewhere(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        '"""Doc: update_wifi_0."""\nQUEUE = f"update_wifi_{0}"\nX = "a:since"\n'
        'log.info("scheduler: a message")\n'
    )
    assert key_literals(module) == [(2, "update_wifi_{}"), (3, "a:since")]


def test_legacy_keys_move_to_their_tagged_names(redis_client: redis.Redis) -> None:
    queue = keyspace.station_queue("wifi", "3")
    redis_client.rpush(f"{queue}:inflight", b"a", b"b")
    redis_client.set(f"{queue}:inflight_id", "update_wifi_3:1:2")
    redis_client.set(f"{keyspace.INCOMING}:since", "100")
    redis_client.rpush(f"{keyspace.INCOMING}:undecodable", b"junk")
    redis_client.rpush(f"dead_letter:{queue}", b"letter")
    # A reliable queue's claimed batch of an older consumer, and one new item.
    redis_client.rpush(keyspace.INCOMING, b"3")
    redis_client.rpush(f"{keyspace.INCOMING}:processing:old", b"1", b"2")
    redis_client.sadd(f"{keyspace.INCOMING}:consumers", "old")
    # Both spellings present (a new worker ran first): lists are appended.
    redis_client.rpush(keyspace.undecodable(queue), b"new")
    redis_client.rpush(f"{queue}:undecodable", b"old")

    moved = keyspace.rename_legacy_keys(redis_client, [keyspace.INCOMING, queue])

    assert moved == 7
    assert redis_client.lrange(keyspace.inflight(queue), 0, -1) == [b"a", b"b"]
    assert redis_client.get(keyspace.inflight_id(queue)) == b"update_wifi_3:1:2"
    assert redis_client.get(keyspace.since(keyspace.INCOMING)) == b"100"
    assert redis_client.lrange(keyspace.dead_letter(queue), 0, -1) == [b"letter"]
    assert redis_client.lrange(keyspace.undecodable(queue), 0, -1) == [b"new", b"old"]
    assert redis_client.lrange(keyspace.INCOMING, 0, -1) == [b"1", b"2", b"3"]
    assert sorted(key.decode() for key in redis_client.keys("*")) == sorted(
        [
            keyspace.inflight(queue),
            keyspace.inflight_id(queue),
            keyspace.since(keyspace.INCOMING),
            keyspace.undecodable(keyspace.INCOMING),
            keyspace.dead_letter(queue),
            keyspace.undecodable(queue),
            keyspace.INCOMING,
        ]
    )
    assert keyspace.rename_legacy_keys(redis_client, [keyspace.INCOMING, queue]) == 0


def test_station_queues_spread_over_the_masters_of_a_cluster() -> None:
    """On three masters with the slots split evenly (as redis-cli --cluster create
    does), every master holds station queues: the shards' ingest spreads out."""
    per_master = Counter(key_slot(q.name.encode()) * 3 // 16384 for q in station_queues())
    assert sorted(per_master) == [0, 1, 2]
    assert min(per_master.values()) >= 8, per_master
