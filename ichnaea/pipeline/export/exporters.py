"""Export targets: send one batch of queued reports to where an ``export_config`` points.

This is the send side only. The queue driver claims a batch from an export
queue, picks the exporter with ``make_exporter`` and calls
``send_with_retries``; on ``True`` it acknowledges the batch, on ``False`` it
parks the batch in a dead-letter queue (a batch is never dropped, unlike the
original, spec section 24 item 11).

API::

    class ExportError(Exception)             # a send failed in a way worth retrying
    Partition(source, api_key)               # from a partitioned queue key; None/None otherwise
    class Exporter(Protocol):                # name; send(items, partition); close()
    make_exporter(name, schema, url, settings, metrics) -> Exporter | None
    send_with_retries(exporter, items, partition, *, metrics, attempts=3,
                      sleep=time.sleep, backoff=(1.0, 2.0, 5.0)) -> bool
    object_key(template, partition, when, ident) -> str    # pure, the S3/file naming rule

Items are ``{"api_key": ..., "report": {...}}``; every target receives
``{"items": [report, ...]}`` with the reports as queued (``ssid``
included) but without Wi-Fi networks that opt out of mapping (``_nomap``,
``_optout``: ``ichnaea.privacy``; this replaces spec section 24 item 19,
and covers items queued before the fan-out filtered them), and with the
API key metadata stripped.

Schemas (spec section 6.2):

* ``dummy`` sends nothing (batches are still counted).
* ``geosubmit`` POSTs the gzip (level 5) JSON body to ``url``. Every reply
  is counted as ``data.export.upload{key, status:<code>}``; non-2xx and
  transport errors raise ``ExportError``. One short-lived HTTP client per
  send: batches are large and rare, and nothing is left open between them.
* ``s3`` puts one gzip (level 7) object per send to ``s3://bucket/template``,
  counted as ``data.export.upload{key, status:success|failure}``. The
  boto3 client is created once per exporter (endpoint from
  ``settings.s3_endpoint_url``, credentials as boto3 finds them).
* ``file`` (our addition, the raw report archive of the single-host set-up)
  writes the same body as ``s3`` to ``file:///abs/dir/template``. The file
  appears atomically: it is written under a hidden ``.*.tmp`` name in the
  target directory, fsynced and renamed, so a crash never leaves a partial
  ``*.json.gz`` for a replay to read. Files are private to the owner (0600):
  raw reports locate people.
* ``internal`` is handled by the station pipeline, not here: ``None``.
* Any other schema, or a URL the schema cannot use, is logged once per
  process and gives ``None``; the caller leaves that queue alone (as the
  original did for unknown schemas, spec section 6.1).

Object naming (``s3`` and ``file``): the URL path is the template, for S3
without the leading ``/`` and with a trailing ``/``. Its placeholders are
``{source}``, ``{api_key}`` (``no_key`` when None, ``no_source`` likewise),
``{year}``, ``{month}``, ``{day}`` (today in UTC), followed by a random
``uuid4().hex + ".json.gz"``. Decisions against the original (spec section
24 item 13): month and day are zero-padded (``2015/07/05``) so keys sort by
date, and the id is UUID4 because UUID1 embeds the host's MAC address. For
``file`` the source and key are reduced to ``[-0-9A-Za-z_.]`` so that no
value can climb out of the archive directory (valid keys already are).

Retries (spec section 6.2 step 2): up to ``attempts`` sends, each timed as
``data.export.upload.timing{key}``; after failure ``i`` (1-based) sleep
``backoff[i - 1]`` (1 s, 2 s, 5 s, the original's ``i*i + 1``). Unlike the
original we do not sleep after the last failure: it would only hold the
worker before the batch is parked. Success counts ``data.export.batch{key}``.
Exceptions other than ``ExportError`` are bugs or non-retriable and
propagate.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
)

from ichnaea.config import Settings
from ichnaea.metrics import Metrics
from ichnaea.objectstore import DirectoryStore, ObjectStore, S3Store
from ichnaea.privacy import strip_opted_out

log = logging.getLogger(__name__)

GEOSUBMIT_GZIP_LEVEL = 5
ARCHIVE_GZIP_LEVEL = 7
GEOSUBMIT_TIMEOUT_S = 60.0
GEOSUBMIT_HEADERS = {
    "Content-Encoding": "gzip",
    "Content-Type": "application/json",
    "User-Agent": "ichnaea",
}

UPLOAD_METRIC = "data.export.upload"
TIMING_METRIC = "data.export.upload.timing"
BATCH_METRIC = "data.export.batch"


class ExportError(Exception):
    """A send failed in a way worth retrying (network, HTTP non-2xx, S3/boto errors, OSError)."""


@dataclass(frozen=True, slots=True)
class Partition:
    """The source and API key a partitioned export queue holds; None for the others."""

    source: str | None = None
    api_key: str | None = None


class Exporter(Protocol):
    name: str

    def send(self, items: Sequence[Mapping[str, Any]], partition: Partition) -> None:
        """Deliver the whole batch or raise ``ExportError``."""

    def close(self) -> None:
        """Release clients held between sends."""


def encode_batch(items: Sequence[Mapping[str, Any]], *, level: int) -> bytes:
    """The gzip JSON body ``{"items": [report, ...]}`` every target receives."""
    reports = [strip_opted_out(item["report"]) for item in items]
    body = json.dumps({"items": reports}, separators=(",", ":"))
    return gzip.compress(body.encode("utf-8"), compresslevel=level)


def object_key(template: str, partition: Partition, when: datetime, ident: str) -> str:
    """Format an S3 key or archive path: ``template`` filled in, then ``<ident>.json.gz``.

    ``when`` should be UTC; month and day are zero-padded (see the module docstring).
    """
    prefix = template.format(
        source=partition.source or "no_source",
        api_key=partition.api_key or "no_key",
        year=f"{when:%Y}",
        month=f"{when:%m}",
        day=f"{when:%d}",
    )
    return f"{prefix}{ident}.json.gz"


def _check_template(template: str) -> None:
    try:
        object_key(template, Partition("gnss", "key"), datetime.now(UTC), "id")
    except (KeyError, IndexError, AttributeError, ValueError) as exc:
        raise ValueError(
            f"path template {template!r}: only {{source}} {{api_key}} {{year}} {{month}}"
            f" {{day}} are allowed ({exc!r})"
        ) from None


class DummyExporter:
    def __init__(self, name: str) -> None:
        self.name = name

    def send(self, items: Sequence[Mapping[str, Any]], partition: Partition) -> None:
        pass

    def close(self) -> None:
        pass


class GeosubmitExporter:
    """POST batches to another geosubmit v2 endpoint."""

    def __init__(
        self, name: str, url: str, *, metrics: Metrics, timeout_s: float = GEOSUBMIT_TIMEOUT_S
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"geosubmit url {url!r} is not an http(s) URL")
        self.name = name
        self.url = url
        self.timeout_s = timeout_s
        self._metrics = metrics

    def send(self, items: Sequence[Mapping[str, Any]], partition: Partition) -> None:
        # Imported here: most worker pools never send (about 0.09 s of start-up).
        import httpx

        body = encode_batch(items, level=GEOSUBMIT_GZIP_LEVEL)
        try:
            response = httpx.post(
                self.url, content=body, headers=GEOSUBMIT_HEADERS, timeout=self.timeout_s
            )
        except (httpx.HTTPError, OSError) as exc:
            raise ExportError(f"{self.name}: POST {self.url} failed: {exc!r}") from exc
        status = response.status_code
        self._metrics.incr(UPLOAD_METRIC, tags={"key": self.name, "status": str(status)})
        if not response.is_success:
            raise ExportError(f"{self.name}: POST {self.url} answered {status}")

    def close(self) -> None:
        pass


_UNSAFE_PATH_CHARS = re.compile(r"[^-0-9A-Za-z_.]")


def _path_segment(value: str | None) -> str | None:
    """``value`` made harmless as one path segment (no separators, no ``..``)."""
    if value is None:
        return None
    safe = _UNSAFE_PATH_CHARS.sub("_", value)
    return "_" if safe.strip(".") == "" else safe


class ArchiveExporter:
    """One gzip JSON object per batch in an object store (:mod:`ichnaea.objectstore`)."""

    def __init__(self, name: str, store: ObjectStore, template: str, *, metrics: Metrics) -> None:
        _check_template(template)
        self.name = name
        self.store = store
        self.template = template
        self._metrics = metrics

    def send(self, items: Sequence[Mapping[str, Any]], partition: Partition) -> None:
        # Source and key cannot climb out of the template (valid ones are unchanged).
        safe = Partition(_path_segment(partition.source), _path_segment(partition.api_key))
        key = object_key(self.template, safe, datetime.now(UTC), uuid.uuid4().hex)
        body = encode_batch(items, level=ARCHIVE_GZIP_LEVEL)
        try:
            self.store.put_bytes(
                key, body, content_type="application/json", content_encoding="gzip"
            )
        except (BotoCoreError, ClientError, OSError) as exc:
            self._metrics.incr(UPLOAD_METRIC, tags={"key": self.name, "status": "failure"})
            raise ExportError(f"{self.name}: storing {key} failed: {exc}") from exc
        self._metrics.incr(UPLOAD_METRIC, tags={"key": self.name, "status": "success"})

    def close(self) -> None:
        self.store.close()


class S3Exporter(ArchiveExporter):
    """Batches as objects under ``s3://bucket/template``."""

    def __init__(self, name: str, url: str, *, metrics: Metrics, endpoint_url: str = "") -> None:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"s3 url {url!r} is not s3://bucket/path")
        template = parts.path.lstrip("/")
        if template and not template.endswith("/"):
            template += "/"
        _check_template(template)
        store = S3Store(parts.netloc, endpoint_url=endpoint_url)
        super().__init__(name, store, template, metrics=metrics)


class FileExporter(ArchiveExporter):
    """Batches as files under ``file:///abs/dir/template``, private to the owner (0600)."""

    def __init__(self, name: str, url: str, *, metrics: Metrics) -> None:
        parts = urlsplit(url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            raise ValueError(f"file url {url!r} is not file:///absolute/path")
        if not parts.path.startswith("/"):
            raise ValueError(f"file url {url!r} needs an absolute path")
        template = parts.path if parts.path.endswith("/") else parts.path + "/"
        # Keys are the absolute paths, relative to the root.
        store = DirectoryStore(Path("/"), mode=0o600)
        super().__init__(name, store, template.lstrip("/"), metrics=metrics)


# (name, schema, reason) already logged by make_exporter: the caller may ask
# again for every batch, and one line per process is enough.
_reported: set[tuple[str, str, str]] = set()


def _report_once(name: str, schema: str, reason: str) -> None:
    if (name, schema, reason) not in _reported:
        _reported.add((name, schema, reason))
        log.error("export %r (schema %r) is not drained: %s", name, schema, reason)


def make_exporter(
    name: str, schema: str, url: str | None, settings: Settings, metrics: Metrics
) -> Exporter | None:
    """The exporter of one ``export_config`` row, or None when this module does not drain it."""
    if schema == "internal":
        return None
    try:
        if schema == "dummy":
            return DummyExporter(name)
        if schema == "geosubmit":
            return GeosubmitExporter(name, url or "", metrics=metrics)
        if schema == "s3":
            return S3Exporter(
                name, url or "", metrics=metrics, endpoint_url=settings.s3_endpoint_url
            )
        if schema == "file":
            return FileExporter(name, url or "", metrics=metrics)
    except (ValueError, BotoCoreError) as exc:
        _report_once(name, schema, str(exc))
        return None
    _report_once(name, schema, "unknown schema")
    return None


def send_with_retries(
    exporter: Exporter,
    items: Sequence[Mapping[str, Any]],
    partition: Partition,
    *,
    metrics: Metrics,
    attempts: int = 3,
    sleep: Callable[[float], None] = time.sleep,
    backoff: Sequence[float] = (1.0, 2.0, 5.0),
) -> bool:
    """Send ``items``, retrying ``ExportError`` (tenacity); False once every attempt failed."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    tags = {"key": exporter.name}

    def send() -> None:
        start = time.perf_counter()
        try:
            exporter.send(items, partition)
        finally:
            metrics.timing(TIMING_METRIC, (time.perf_counter() - start) * 1000.0, tags=tags)

    def pause(state: RetryCallState) -> float:
        return backoff[min(state.attempt_number, len(backoff)) - 1] if backoff else 0.0

    def note(state: RetryCallState) -> None:
        assert state.outcome is not None and state.next_action is not None
        log.warning(
            "export %r: attempt %d/%d failed, retrying in %.1f s: %s",
            exporter.name,
            state.attempt_number,
            attempts,
            state.next_action.sleep,
            state.outcome.exception(),
        )

    retrying = Retrying(
        retry=retry_if_exception_type(ExportError),
        stop=stop_after_attempt(attempts),
        wait=pause,
        sleep=sleep,
        before_sleep=note,
        reraise=True,
    )
    try:
        retrying(send)
    except ExportError as failure:
        log.error(
            "export %r: giving up on %d items after %d attempts: %s",
            exporter.name,
            len(items),
            attempts,
            failure,
        )
        return False
    metrics.incr(BATCH_METRIC, tags=tags)
    return True
