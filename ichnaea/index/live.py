"""The station index a web process answers from: the mapped generation plus its overlay, kept fresh.

A :class:`LiveIndex` runs one background thread per web process:

1. **Open.** Note the newest announcement id (:mod:`ichnaea.index.changes`),
   then map the host's index with :func:`ichnaea.index.build.ensure_index`
   (which builds it under the host lock when it is missing or damaged; a
   damaged file is never served), then read the rows modified since the
   build (the catch-up read below). Until this is done, or while it keeps
   failing, :attr:`LiveIndex.ready` is False and the locate path asks the
   database, as it does without an index.
2. **Refresh**: wait for announcements after the last one seen (a
   blocking ``XREAD`` of up to ``refresh_s``, default 0.5 s, so the thread
   wakes as soon as one arrives), read those stations' rows from the
   database and put them into the overlay, a small sorted copy of the
   changed records (a station without a row or a position is recorded as
   gone). Lookups search the overlay first (:mod:`ichnaea.index.reader`).
   A station the pipeline commits is so answered from its new state one
   Redis round trip and one database read after the commit: milliseconds,
   well inside the 2 s the service promises. Reading a replica, whose copy
   of the commit may arrive after the announcement, each announced key is
   read again until its row is as new as announced (``replica_wait_s``).
3. **Catch up**, every ``catchup_s`` (default 60 s), and at once when the
   stream says entries were missed (trimmed before this process read
   them, Redis unreachable, Redis restarted): read every row whose
   ``modified`` is at or after the last catch-up's newest value minus
   ``catchup_margin_s`` (a transaction that committed late carries an
   older ``modified``). Confirmations only move ``last_seen``, not
   ``modified``; a missed one waits for the next rebuild.
4. **Fold.** When the overlay holds more than ``max_overlay_rows`` entries
   or the generation is older than ``rebuild_s``, one process of the host
   (the one that gets the lock without waiting) builds a new generation
   from the database in a thread of its own; every process notices the
   replaced files, maps them and drops the overlay entries read before the
   new build started (the build read those rows later).

Every swap (a new overlay, a new generation) replaces one reference to an
immutable :class:`_View`; a request takes the reference once, so it never
sees half of a change, and no lock is held on the request path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import redis
import sentry_sdk
from numpy.typing import NDArray
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from ichnaea._fast import locate_cells, locate_macs
from ichnaea.broker.client import REDIS_ERRORS
from ichnaea.enums import Radio
from ichnaea.index import changes
from ichnaea.index.build import build_index, encode_records, ensure_index, host_lock, index_keys
from ichnaea.index.format import KEY_DTYPES, KINDS, VALUE_DTYPES, CorruptIndexError, file_name
from ichnaea.index.reader import (
    Doubles,
    Found,
    KernelTables,
    KindIndex,
    Overlay,
    StationIndex,
    kernel_tables,
    lookup_areas,
    lookup_cells,
    lookup_macs,
    open_index,
)
from ichnaea.positioning import CELL_RADIUS_BOUNDS_M
from ichnaea.repositories.index_rows import rows_by_keys, rows_modified_since
from ichnaea.repositories.stations import AreaRows, StationRows

log = logging.getLogger(__name__)

MAX_BLOCK_MS = 1000
# Reading a replica: announced keys are read again at most this often.
RECHECK_S = 0.25


@dataclass(frozen=True, slots=True)
class IndexSettings:
    directory: Path
    refresh_s: float = 0.5
    catchup_s: float = 60.0
    catchup_margin_s: float = 30.0
    max_overlay_rows: int = 200_000
    rebuild_s: float = 6 * 3600.0
    # Seconds between tries while the index cannot be opened or built.
    retry_s: float = 30.0
    # Reading a replica (0: the primary): how long an announced key is read
    # again until its row is as new as announced.
    replica_wait_s: float = 0.0
    # A mapped generation must have started at or after this (time.time_ns());
    # an older one is rebuilt at open. 0: any.
    not_before_ns: int = 0


def _empty_overlay(kind: str) -> Overlay:
    return Overlay(
        keys=np.zeros(0, dtype=KEY_DTYPES[kind]),
        values=np.zeros(0, dtype=VALUE_DTYPES[kind]),
        present=np.zeros(0, dtype=np.bool_),
        fetched_ns=np.zeros(0, dtype=np.int64),
        regions=np.array([None], dtype=object),
    )


def _redundant(
    base: KindIndex,
    keys: NDArray[Any],
    values: NDArray[np.void],
    present: NDArray[np.bool_],
    regions: NDArray[np.object_],
) -> NDArray[np.bool_]:
    """Which new entries the base already says: the same record, or gone and not in it."""
    if len(base.keys) == 0:
        return ~present
    at = np.minimum(np.searchsorted(base.keys, keys), len(base.keys) - 1)
    in_base = base.keys[at] == keys
    stored = base.values[at]
    same = in_base & present
    for name in values.dtype.names or ():
        if name != "region":
            same &= stored[name] == values[name]
    same &= base.regions[stored["region"]] == regions[values["region"]]
    result: NDArray[np.bool_] = same | (~in_base & ~present)
    return result


def merge_overlay(
    old: Overlay,
    base: KindIndex,
    kind: str,
    rows: Sequence[Sequence[Any]],
    gone: Iterable[bytes],
    fetched_ns: int,
) -> Overlay:
    """``old`` with the rows read at ``fetched_ns`` put in, and the ``gone`` keys marked gone.

    ``rows`` are ``(key, *value columns)`` as :mod:`ichnaea.repositories.index_rows`
    reads them; a row without a position counts as gone. Entries that the
    mapped ``base`` already holds as they are (the catch-up reads back
    recent rows the build has) leave the overlay rather than join it.
    """
    located = [row for row in rows if row[1] is not None and row[2] is not None]
    gone_keys = [bytes(row[0]) for row in rows if row[1] is None or row[2] is None]
    gone_keys += list(gone)
    regions = {name: code for code, name in enumerate(old.regions.tolist())}
    keys, values = encode_records(kind, located, regions)
    region_names = np.array(sorted(regions, key=regions.__getitem__), dtype=object)
    gone_index = index_keys(kind, gone_keys)
    new_keys = np.concatenate([keys, gone_index])
    new_values = np.concatenate([values, np.zeros(len(gone_index), dtype=values.dtype)])
    new_present = np.concatenate(
        [np.ones(len(keys), dtype=np.bool_), np.zeros(len(gone_index), dtype=np.bool_)]
    )
    # One entry per key; a key both located and gone in one read is located.
    new_keys, first = np.unique(new_keys, return_index=True)
    new_values, new_present = new_values[first], new_present[first]
    keep = ~np.isin(old.keys, new_keys)
    needed = ~_redundant(base, new_keys, new_values, new_present, region_names)
    new_keys, new_values, new_present = new_keys[needed], new_values[needed], new_present[needed]
    all_keys = np.concatenate([old.keys[keep], new_keys])
    order = np.argsort(all_keys, kind="stable")
    return Overlay(
        keys=all_keys[order],
        values=np.concatenate([old.values[keep], new_values])[order],
        present=np.concatenate([old.present[keep], new_present])[order],
        fetched_ns=np.concatenate(
            [old.fetched_ns[keep], np.full(len(new_keys), fetched_ns, dtype=np.int64)]
        )[order],
        regions=region_names,
    )


def _newer_than(overlay: Overlay, generation: int) -> Overlay:
    """The entries read after a build that started at ``generation`` (ns)."""
    keep = overlay.fetched_ns >= generation
    return Overlay(
        keys=overlay.keys[keep],
        values=overlay.values[keep],
        present=overlay.present[keep],
        fetched_ns=overlay.fetched_ns[keep],
        regions=overlay.regions,
    )


@dataclass(frozen=True, slots=True)
class _View:
    base: StationIndex
    overlays: dict[str, Overlay]
    # Per kind, the tables the search kernels take (reader.kernel_tables),
    # gathered once per view instead of once per search.
    tables: dict[str, KernelTables] = field(init=False)
    cell_width: int = field(init=False)

    def __post_init__(self) -> None:
        tables = {
            kind: kernel_tables(index, self.overlays.get(kind))
            for kind, index in self.base.kinds.items()
        }
        object.__setattr__(self, "tables", tables)
        object.__setattr__(self, "cell_width", self.base.kinds["cell"].keys.dtype.itemsize)


@dataclass(slots=True)
class _Progress:
    """What the refresher has read so far (touched by its thread only)."""

    last_id: bytes | None = None  # None: announcements not followed (Redis unreachable)
    high_water_s: dict[str, int] = field(default_factory=dict)
    next_catchup: float = 0.0
    # Reading a replica: announced keys to read again, per kind, with
    # (``at`` of the announcement, give up at this monotonic time).
    recheck: dict[str, dict[bytes, tuple[int, float]]] = field(default_factory=dict)
    next_recheck: float = 0.0


def _file_ids(directory: Path) -> dict[str, tuple[int, int] | None]:
    ids: dict[str, tuple[int, int] | None] = {}
    for kind in KINDS:
        try:
            stat = (directory / file_name(kind)).stat()
            ids[kind] = (stat.st_dev, stat.st_ino)
        except OSError:
            ids[kind] = None
    return ids


def _seconds(value: datetime) -> int:
    """Epoch seconds of a naive UTC ``modified``."""
    return int(value.replace(tzinfo=UTC).timestamp())


def _is_fresh(row: Sequence[Any] | None, at: int) -> bool:
    """Whether a row read back is at least as new as the write announced at ``at``."""
    return row is not None and row[6] is not None and _seconds(row[6]) >= at


def _to_datetime(seconds: int) -> datetime:
    return datetime.fromtimestamp(max(seconds, 0), UTC).replace(tzinfo=None)


class LiveIndex:
    """The station lookups of one web process, from the host's index kept fresh."""

    def __init__(self, engine: Engine, client: redis.Redis, settings: IndexSettings) -> None:
        self._engine = engine
        self._redis = client
        self.settings = settings
        self._view: _View | None = None
        self._progress = _Progress()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._builder: threading.Thread | None = None
        # The on-disk files found damaged, so that they are reported once.
        self._unusable_files: dict[str, tuple[int, int] | None] | None = None
        self.state = "starting"
        self.error: str | None = None
        self.refreshed_at: float | None = None  # time.time() of the last good refresh
        # The refresher waits for announcements this long (below the Redis
        # client's socket timeout, so that waiting is not a failure).
        self._block_ms = max(1, min(int(settings.refresh_s * 1000), MAX_BLOCK_MS))

    @property
    def client(self) -> redis.Redis:
        """The Redis client the refresher reads the announcements with."""
        return self._redis

    # -- lookups (request path) -----------------------------------------

    @property
    def ready(self) -> bool:
        """Whether lookups may use the index (opened and caught up)."""
        return self.state == "ready"

    def _current(self) -> _View:
        view = self._view
        if view is None:
            raise RuntimeError("the station index is not ready")
        return view

    def macs(
        self, kind: str, macs: Sequence[bytes], *, today: date, now_s: float | None = None
    ) -> StationRows:
        view = self._current()
        return lookup_macs(view.base.kinds[kind], view.overlays.get(kind), macs, today, now_s)

    def mac_clusters(
        self,
        kind: str,
        macs: bytes,
        signal_dbm: Doubles,
        age_ms: Doubles,
        today_day: float,
        now_s: float,
        max_distance_m: float,
        max_networks: int,
        min_accuracy_m: float,
        max_accuracy_m: float,
    ) -> list[Found]:
        """The Wi-Fi or Bluetooth clusters of a query in one compiled call
        (``_fast.locate_macs``) on the current view.

        ``macs`` are 6-byte keys, ascending and unique, joined, with one
        signal and one age each; ``today_day`` is today's proleptic ordinal.
        The clusters are what gathering (``lookup_macs``), clustering and
        aggregating (``ichnaea.positioning``) give one after the other.
        Positional arguments: this runs once per locate request.
        """
        found: list[Found] = locate_macs(
            macs,
            signal_dbm,
            age_ms,
            *self._current().tables[kind],
            today_day,
            now_s,
            max_distance_m,
            max_networks,
            min_accuracy_m,
            max_accuracy_m,
        )
        return found

    def cell_groups(
        self,
        cellids: bytes,
        floor_dbm: Doubles,
        signal_dbm: Doubles,
        age_ms: Doubles,
        today_day: float,
        now_s: float,
        min_accuracy_m: float,
        max_accuracy_m: float,
    ) -> list[Found]:
        """The cell positions of a query per group of cells, in one compiled call
        (``_fast.locate_cells``) on the current view.

        ``cellids`` are unique codec keys zero-padded to the index's key width
        (17 bytes), ascending and joined, with the lowest signal of their
        radio, one signal and one age each; the ``used`` indices of the answer
        count in that order. Empty when no cell is found.
        """
        view = self._current()
        found: list[Found] = locate_cells(
            cellids,
            view.cell_width,
            floor_dbm,
            signal_dbm,
            age_ms,
            *view.tables["cell"],
            today_day,
            now_s,
            *CELL_RADIUS_BOUNDS_M,
            min_accuracy_m,
            max_accuracy_m,
        )
        return found

    def cells(
        self,
        cellids: Iterable[tuple[Radio, bytes]],
        *,
        today: date,
        now_s: float | None = None,
    ) -> StationRows:
        view = self._current()
        keys = [key for _, key in cellids]
        cells = view.base.kinds["cell"], view.overlays.get("cell")
        return lookup_cells(*cells, keys, today, now_s)

    def areas(self, areaids: Iterable[bytes]) -> AreaRows:
        view = self._current()
        return lookup_areas(view.base.kinds["area"], view.overlays.get("area"), list(areaids))

    # -- state for the heartbeat ----------------------------------------

    def status(self) -> dict[str, Any]:
        view = self._view
        now = time.time()
        result: dict[str, Any] = {"up": self.ready, "state": self.state}
        if view is not None:
            result["generation"] = view.base.generation
            result["age_s"] = round(now - view.base.build_time_s, 1)
            result["stations"] = sum(k.header.count for k in view.base.kinds.values())
            result["overlay_rows"] = sum(len(o) for o in view.overlays.values())
        if self.refreshed_at is not None:
            result["refreshed_s_ago"] = round(now - self.refreshed_at, 2)
        if self.error:
            result["error"] = self.error
        return result

    # -- the refresher thread -------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="station-index", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        for thread in (self._thread, self._builder):
            if thread is not None:
                thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            wait = self.settings.refresh_s
            opening = not self.ready
            try:
                if opening:
                    self.open()
                elif self.refresh():
                    continue  # it waited for announcements: read again at once
            except Exception as exc:  # the thread must outlive any failure; logged and reported
                error = f"{type(exc).__name__}: {exc}"
                if error != self.error:
                    # Once per kind of failure, not twice a second while it lasts.
                    log.exception("station index: %s failed", "open" if opening else "refresh")
                    sentry_sdk.capture_exception(exc)
                self.error = error
                if opening:
                    self.state = "failed"
                    wait = self.settings.retry_s
            self._stop.wait(max(0.0, wait - (time.monotonic() - started)))

    def _follow(self) -> None:
        """Start following the announcements from the newest one, if Redis answers."""
        try:
            self._progress.last_id = changes.latest_id(self._redis)
        except REDIS_ERRORS as exc:
            self._progress.last_id = None
            log.warning("station index: announcements not followed, redis: %s", exc)

    def open(self) -> None:
        """Map (or build) the host's index and catch up with the database; blocking.

        Lookups use it only once both are done (:attr:`ready`): a mapped
        generation older than the rows is never served before its catch-up.
        """
        self.state = "building"
        self._view = None
        self._follow()  # before the build or catch-up: nothing committed later is missed
        base = ensure_index(
            self._engine, self.settings.directory, not_before_ns=self.settings.not_before_ns
        )
        self._progress.high_water_s = {
            kind: base.header(kind).high_water_modified_s for kind in KINDS
        }
        self._view = _View(base, {kind: _empty_overlay(kind) for kind in KINDS})
        self._catch_up()
        self.state = "ready"
        self.error = None
        self.refreshed_at = time.time()
        log.info(
            "station index: ready, generation %d, %d stations",
            base.generation,
            sum(base.header(kind).count for kind in KINDS),
        )

    def refresh(self) -> bool:
        """One refresh step: a newer generation, announcements, catch-up, fold.

        Returns whether it read the announcements (waiting up to
        ``refresh_s`` for one); False when Redis could not be asked.
        """
        self._remap_if_replaced()
        progress = self._progress
        missed = False
        if progress.last_id is None:
            self._follow()
            # Followed again: what was announced meanwhile is read from the database.
            missed = progress.last_id is not None
        else:
            try:
                found = changes.read_changes(self._redis, progress.last_id, block_ms=self._block_ms)
            except REDIS_ERRORS as exc:
                log.warning("station index: announcements not read, redis: %s", exc)
                progress.last_id = None
            else:
                missed = found.missed
                for kind, keys in found.keys.items():
                    rows = self._apply_keys(kind, sorted(keys))
                    self._note_recheck(kind, found.written.get(kind, {}), rows)
                    log.debug("station index: %d %s stations changed", len(keys), kind)
                # Only once applied: if the database failed them, the next
                # refresh reads the same announcements again.
                progress.last_id = found.last_id
        if missed:
            log.info("station index: announcements were missed, catching up from the database")
            progress.next_catchup = 0.0
        self._recheck()
        if time.monotonic() >= progress.next_catchup:
            self._catch_up()
        self._fold_if_due()
        self.error = None
        self.refreshed_at = time.time()
        return progress.last_id is not None and not missed

    def _apply_keys(self, kind: str, keys: list[bytes]) -> dict[bytes, Sequence[Any]]:
        """Read ``keys``' rows into the overlay; return them by key."""
        fetched_ns = time.time_ns()
        with self._engine.connect() as conn:
            rows = rows_by_keys(conn, kind, keys)
        found = {bytes(row[0]): row for row in rows}
        self._put(kind, rows, [key for key in keys if key not in found], fetched_ns)
        return found

    def _note_recheck(
        self, kind: str, written: dict[bytes, int], rows: dict[bytes, Sequence[Any]]
    ) -> None:
        """Reading a replica: keep the announced keys it did not have yet (:meth:`_recheck`).

        The announcement can overtake the replica: the pipeline announces
        after its commit on the primary, and the replica applies that commit
        a moment later. A key whose row was missing or older than the
        announced ``at`` is read again until it is not, for at most
        ``replica_wait_s``; beyond that the periodic catch-up reads it.
        Rows carry whole seconds, so an older write of the same second
        passes for the announced one: a station written twice within a
        second may be answered one write behind until the catch-up.
        """
        if self.settings.replica_wait_s <= 0 or not written:
            return
        give_up = time.monotonic() + self.settings.replica_wait_s
        pending = self._progress.recheck.setdefault(kind, {})
        for key, at in written.items():
            if not _is_fresh(rows.get(key), at):
                pending[key] = (at, give_up)

    def _recheck(self) -> None:
        """Read the keys kept by :meth:`_note_recheck` again, at most every ``RECHECK_S``."""
        progress = self._progress
        now = time.monotonic()
        if now < progress.next_recheck:
            return
        progress.next_recheck = now + RECHECK_S
        for kind, pending in progress.recheck.items():
            # Given up first: a replica that stays unreachable leaves nothing behind.
            for key in [key for key, (_, give_up) in pending.items() if give_up <= now]:
                del pending[key]
            if not pending:
                continue
            rows = self._apply_keys(kind, sorted(pending))
            for key, (at, _) in list(pending.items()):
                if _is_fresh(rows.get(key), at):
                    del pending[key]

    def _put(
        self, kind: str, rows: Sequence[Sequence[Any]], gone: list[bytes], fetched_ns: int
    ) -> None:
        view = self._current()
        if not rows and not gone:
            return
        overlay = merge_overlay(
            view.overlays[kind], view.base.kinds[kind], kind, rows, gone, fetched_ns
        )
        # Replaced, never changed in place: requests in flight keep the old view.
        self._view = _View(view.base, {**view.overlays, kind: overlay})

    def _catch_up(self) -> None:
        progress = self._progress
        margin = self.settings.catchup_margin_s
        for kind in KINDS:
            since = progress.high_water_s.get(kind, -1)
            newest_s = since
            fetched_ns = time.time_ns()
            with self._engine.connect() as conn:
                pages = rows_modified_since(conn, kind, _to_datetime(int(since - margin)))
                for rows in pages:
                    modified = [row[6] for row in rows if row[6] is not None]
                    if modified:
                        newest = _seconds(max(modified))
                        newest_s = max(newest_s, newest)
                    self._put(kind, rows, [], fetched_ns)
            progress.high_water_s[kind] = newest_s
        progress.next_catchup = time.monotonic() + self.settings.catchup_s

    def _remap_if_replaced(self) -> None:
        view = self._current()
        mapped = {kind: view.base.kinds[kind].file_id for kind in KINDS}
        on_disk = _file_ids(self.settings.directory)
        if on_disk in (mapped, self._unusable_files):
            return
        try:
            base = open_index(self.settings.directory)
        except CorruptIndexError as exc:
            # Damaged (or gone): keep serving what is mapped, and build anew.
            log.warning("station index: the files on disk are not usable, rebuilding: %s", exc)
            self._unusable_files = on_disk
            self._start_rebuild(view.base.generation)
            return
        overlays = {kind: _newer_than(view.overlays[kind], base.generation) for kind in KINDS}
        for kind in KINDS:
            high_water = base.header(kind).high_water_modified_s
            self._progress.high_water_s[kind] = max(
                self._progress.high_water_s.get(kind, -1), high_water
            )
        self._view = _View(base, overlays)
        log.info("station index: mapped generation %d", base.generation)

    def _fold_if_due(self) -> None:
        view = self._current()
        overlay_rows = sum(len(o) for o in view.overlays.values())
        too_old = time.time() - view.base.build_time_s > self.settings.rebuild_s
        if overlay_rows > self.settings.max_overlay_rows or too_old:
            self._start_rebuild(view.base.generation)

    def _start_rebuild(self, mapped_generation: int) -> None:
        if self._builder is not None and self._builder.is_alive():
            return
        self._builder = threading.Thread(
            target=self._rebuild, args=(mapped_generation,), name="station-index-build"
        )
        self._builder.start()

    def _rebuild(self, mapped_generation: int) -> None:
        """Build a new generation unless another process of the host is building one."""
        directory = self.settings.directory
        try:
            with host_lock(directory, blocking=False) as locked:
                if not locked:
                    return
                try:
                    on_disk = open_index(directory).generation
                except CorruptIndexError:
                    on_disk = 0
                if on_disk > mapped_generation:
                    return  # another process has just built one
                build_index(self._engine, directory)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("station index: rebuild failed, keeping the mapped one: %s", exc)
