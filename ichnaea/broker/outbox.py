"""Exactly-once effects across hash slots: the acknowledging transaction on Redis Cluster.

A stage acknowledges its batch in one Redis transaction that also applies
the batch's *effects*: pushes to the next queues, counters, the station
change stream (:mod:`ichnaea.pipeline.runner`). On a single Redis server
that is one ``MULTI``/``EXEC``. On a cluster a transaction may only touch
keys of one hash slot, and the effects land in many. So on a cluster:

1. The effects are recorded (:class:`Recorder`) and split by hash slot.
   Those in the queue's own slot stay in the transaction; the others are
   appended, as one *entry*, to the consumer's outbox list
   ``{<queue>}:outbox:<consumer>`` in that same transaction. The batch is
   thus acknowledged exactly when its output is recorded: never one
   without the other.
2. Right after, the consumer *delivers* the entry: one script per target
   slot applies that slot's commands (all in one pipeline: a round trip
   per master). Each script first compares the
   entry's sequence number with the last one that slot took from this
   consumer (a hash ``{<key>}:delivered``, field ``<queue>|<consumer>``)
   and does nothing for an entry it already took, so a delivery repeated
   after a crash is applied once. Then the entry leaves the outbox.
3. A consumer delivers its own entries in order and, while one of them is
   still undelivered (a node unreachable), refuses to acknowledge the next
   batch (:class:`Undelivered`, a Redis error the runner treats as
   transient). Sequence numbers per consumer therefore reach each slot in
   increasing order, and the comparison above is exact.
4. Entries of a consumer that died between steps 1 and 2 are delivered by
   :func:`sweep`, which the worker runs with the reclaim of orphaned
   batches; it leaves entries younger than ``min_age_s`` to their owner.

On a single server (or an embedded one) none of this runs: :func:`plan`
hands the effects straight to the transaction.

The ``delivered`` hashes keep one small field per (queue, consumer
process) that ever sent to that slot: a few hundred bytes per worker
restart, which nothing prunes yet.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.client import Pipeline
from redis.commands.core import CoreCommands
from redis.crc import key_slot
from redis.exceptions import NoScriptError

from ichnaea.broker import keyspace
from ichnaea.broker.client import REDIS_ERRORS, decoded, is_cluster

log = logging.getLogger(__name__)

Effects = Callable[[Pipeline], object]

# Commands an effect may use: the key is the first argument, the rest are values.
_SINGLE_KEY = frozenset(
    {
        "RPUSH",
        "LPUSH",
        "SET",
        "INCR",
        "INCRBY",
        "HINCRBY",
        "HSET",
        "EXPIRE",
        "XADD",
        "SADD",
        "SREM",
        "PFADD",
        "ZADD",
    }
)
# Of those, the ones that may be split into several calls of at most
# _CHUNK values without changing what they do (Lua's unpack has a limit).
_VARIADIC = frozenset({"RPUSH", "LPUSH", "SADD", "SREM", "PFADD"})
_CHUNK = 1000

# KEYS[1]: the slot's delivered hash, KEYS[2..]: the keys the commands touch.
# ARGV: sender field, sequence number, command count, then per command: its
# value count n, its name, the index of its key in KEYS, its n values.
_DELIVER = """
local last = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if last >= tonumber(ARGV[2]) then return 0 end
local at = 4
for c = 1, tonumber(ARGV[3]) do
  local n = tonumber(ARGV[at])
  local key = KEYS[tonumber(ARGV[at + 2])]
  redis.call(ARGV[at + 1], key, unpack(ARGV, at + 3, at + 2 + n))
  at = at + 3 + n
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

_DELIVER_SHA = hashlib.sha1(_DELIVER.encode()).hexdigest()

# KEYS[1]: an outbox, KEYS[2]: its queue's senders set; ARGV: the entry, the sender.
# Removes the entry only if it is still first (another deliverer may have
# taken it), and forgets the sender once its outbox is empty.
_POP = """
if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then redis.call('LPOP', KEYS[1]) end
if redis.call('LLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
return 1
"""

_sequence = itertools.count(1)


class Undelivered(redis.RedisError):
    """An earlier outbox entry of this consumer could not be delivered yet."""


class Recorder(CoreCommands):
    """Takes Redis commands like a pipeline and keeps them as argument tuples."""

    # Abstract in CoreCommands; nothing here dispatches events.
    _event_dispatcher = None  # type: ignore[assignment]

    def __init__(self) -> None:
        self.commands: list[tuple[Any, ...]] = []

    def execute_command(self, *args: Any, **options: Any) -> Recorder:
        name = str(args[0]).upper()
        if name in ("DEL", "UNLINK"):
            self.commands.extend((name, key) for key in args[1:])
        elif name not in _SINGLE_KEY:
            raise TypeError(f"outbox: an effect may not use {name} (multi-key or not supported)")
        elif name in _VARIADIC and len(args) > 2 + _CHUNK:
            for start in range(2, len(args), _CHUNK):
                self.commands.append((name, args[1], *args[start : start + _CHUNK]))
        else:
            self.commands.append((name, *args[1:]))
        return self


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | memoryview | bytearray):
        return bytes(value)
    return str(value).encode()


def _pack(parts: Sequence[Any]) -> bytes:
    """Length-prefixed concatenation: binary-safe, and cheap both ways."""
    out = bytearray()
    for part in parts:
        raw = _as_bytes(part)
        out += struct.pack(">I", len(raw))
        out += raw
    return bytes(out)


def _unpack(raw: bytes) -> list[bytes]:
    parts, at = [], 0
    while at < len(raw):
        (size,) = struct.unpack_from(">I", raw, at)
        parts.append(raw[at + 4 : at + 4 + size])
        at += 4 + size
    return parts


@dataclass(slots=True)
class _Group:
    """The commands of one entry for one target slot, as the deliver script takes them."""

    keys: list[bytes] = field(default_factory=list)
    argv: list[Any] = field(default_factory=list)
    count: int = 0

    def add(self, command: tuple[Any, ...]) -> None:
        key = _as_bytes(command[1])
        if key not in self.keys:
            self.keys.append(key)
        values = command[2:]
        # KEYS[1] is the delivered hash: the command's key is KEYS[index + 2].
        self.argv += [len(values), command[0], self.keys.index(key) + 2, *values]
        self.count += 1


def _encode_entry(seq: int, groups: Sequence[_Group]) -> bytes:
    parts: list[Any] = [seq, time.time(), len(groups)]
    for group in groups:
        parts += [len(group.keys), *group.keys, group.count, len(group.argv), *group.argv]
    return _pack(parts)


@dataclass(frozen=True, slots=True)
class _Entry:
    seq: int
    created: float
    # Per target slot: (keys, argv after the command count, command count).
    groups: list[tuple[list[bytes], list[bytes], int]]


def _decode_entry(raw: bytes) -> _Entry:
    parts = _unpack(raw)
    seq, created, count = int(parts[0]), float(parts[1]), int(parts[2])
    at, groups = 3, []
    for _ in range(count):
        nkeys = int(parts[at])
        keys = parts[at + 1 : at + 1 + nkeys]
        at += 1 + nkeys
        commands, nargv = int(parts[at]), int(parts[at + 1])
        groups.append((keys, parts[at + 2 : at + 2 + nargv], commands))
        at += 2 + nargv
    return _Entry(seq, created, groups)


@dataclass(slots=True)
class Plan:
    """How one acknowledgement applies its effects: in its transaction, or partly by outbox."""

    client: redis.Redis
    queue: str
    sender: str
    effects: Effects | None
    local: list[tuple[Any, ...]] | None = None
    entry: bytes | None = None

    def queue_on(self, pipe: Pipeline) -> None:
        """Queue the effects (or their local part and the outbox entry) on the transaction."""
        if self.local is None:
            if self.effects is not None:
                self.effects(pipe)
            return
        for command in self.local:
            pipe.execute_command(*command)  # type: ignore[no-untyped-call]
        if self.entry is not None:
            pipe.rpush(keyspace.outbox(self.queue, self.sender), self.entry)
            pipe.sadd(keyspace.outbox_senders(self.queue), self.sender)

    def deliver(self) -> None:
        """After the transaction: deliver the entry it recorded (cluster only).

        The batch is acknowledged by then, so a failure here is only logged:
        the entry waits in the outbox, and this consumer's next
        acknowledgement (or the sweep) delivers it first.
        """
        if self.entry is None:
            return
        try:
            deliver_outbox(self.client, self.queue, self.sender)
        except REDIS_ERRORS as exc:
            log.warning("%s: acknowledged, output delivered later: %s", self.queue, exc)


def plan(client: redis.Redis, queue: str, sender: str, effects: Effects | None) -> Plan:
    """Prepare the effects of ``sender``'s acknowledgement of a batch of ``queue``.

    On a cluster, first delivers what ``sender`` left undelivered (raising
    :class:`Undelivered` if that still fails), then splits the effects by
    hash slot. Call before the transaction starts.
    """
    result = Plan(client, queue, sender, effects)
    if effects is None or not is_cluster(client):
        return result
    deliver_outbox(client, queue, sender)
    recorder = Recorder()
    effects(recorder)  # type: ignore[arg-type]
    home = key_slot(_as_bytes(queue))
    local: list[tuple[Any, ...]] = []
    remote: dict[int, _Group] = {}
    for command in recorder.commands:
        slot = key_slot(_as_bytes(command[1]))
        if slot == home:
            local.append(command)
        else:
            remote.setdefault(slot, _Group()).add(command)
    result.local = local
    if remote:
        result.entry = _encode_entry(next(_sequence), list(remote.values()))
    return result


def _deliver_entry(client: redis.Redis, field_name: str, entry: _Entry) -> None:
    """One script run per target slot, all in one pipeline (a round trip per master).

    A node that does not know the script (restarted, failed over) refuses
    the run with NOSCRIPT: the script is loaded on every master and the
    whole entry sent again, which the sequence check makes harmless for
    the slots that took it the first time.
    """
    for attempt in range(2):
        try:
            with client.pipeline(transaction=False) as pipe:
                for keys, argv, count in entry.groups:
                    marker = keyspace.delivered(decoded(keys[0]))
                    args: list[bytes | str | int] = [field_name, entry.seq, count, *argv]
                    pipe.evalsha(_DELIVER_SHA, 1 + len(keys), marker, *keys, *args)
                pipe.execute()
            return
        except NoScriptError:
            if attempt:
                raise
            client.script_load(_DELIVER)


def deliver_outbox(client: redis.Redis, queue: str, sender: str, *, min_age_s: float = 0.0) -> int:
    """Deliver ``sender``'s outbox entries of ``queue`` in order; return how many.

    Entries younger than ``min_age_s`` (still their live owner's) stop the
    walk. Raises :class:`Undelivered` when an entry cannot be delivered.
    """
    box = keyspace.outbox(queue, sender)
    pop = client.register_script(_POP)
    field_name = f"{queue}|{sender}"
    done = 0
    for raw in client.lrange(box, 0, -1):
        entry = _decode_entry(bytes(raw) if isinstance(raw, bytes) else raw.encode())
        if time.time() - entry.created < min_age_s:
            break
        try:
            _deliver_entry(client, field_name, entry)
        except REDIS_ERRORS as exc:
            raise Undelivered(f"{queue}: outbox entry {entry.seq} of {sender}: {exc}") from exc
        pop(keys=[box, keyspace.outbox_senders(queue)], args=[raw, sender])
        done += 1
    return done


def sweep(client: redis.Redis, queues: Sequence[str], *, min_age_s: float) -> int:
    """Deliver the outbox entries that consumers left behind (they stopped); return how many."""
    if not is_cluster(client):
        return 0
    done = 0
    for queue in queues:
        for sender in client.smembers(keyspace.outbox_senders(queue)):
            done += deliver_outbox(client, queue, decoded(sender), min_age_s=min_age_s)
    return done


def pending(client: redis.Redis, queues: Sequence[str]) -> int:
    """Outbox entries not yet delivered, over ``queues`` (0 on a single server)."""
    if not is_cluster(client):
        return 0
    total = 0
    for queue in queues:
        for sender in client.smembers(keyspace.outbox_senders(queue)):
            total += int(client.llen(keyspace.outbox(queue, decoded(sender))))
    return total
