"""Exporters' send side (spec pipeline.md sections 6.2, 23 items 5-6, 24 items 13 and 19).

Real targets only: moto's S3 server, a local HTTP server, the file system.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import socket
import stat
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ichnaea.config import Settings
from ichnaea.metrics import Metrics
from ichnaea.pipeline.export.exporters import (
    Exporter,
    ExportError,
    FileExporter,
    GeosubmitExporter,
    Partition,
    S3Exporter,
    make_exporter,
    object_key,
    send_with_retries,
)
from tests._support import RecordingMetrics
from tests.fixtures_provider import Provider
from tests.fixtures_s3 import S3Bucket

SPEC_TEMPLATE = "backups/{source}/{api_key}/{year}/{month}/{day}"


@pytest.fixture
def metrics() -> RecordingMetrics:
    return RecordingMetrics()


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


def report(n: int, *, source: str = "gnss", position: bool = True) -> dict[str, Any]:
    """A v2-shaped report as queued, with the fields that must survive export."""
    body: dict[str, Any] = {
        "timestamp": 1_460_700_010_000 + n,
        "wifiAccessPoints": [
            {"macAddress": f"01:23:45:67:89:{n:02x}", "ssid": "home", "signalStrength": -51}
        ],
        "cellTowers": [
            {
                "radioType": "lte",
                "mobileCountryCode": 234,
                "mobileNetworkCode": 30,
                "locationAreaCode": 2,
                "cellId": 1234 + n,
                "carrier": "Vodafone",
            }
        ],
        "fallbacks": {"lacf": True, "ipf": False},
        "position": None,
    }
    if position:
        body["position"] = {"latitude": 51.5, "longitude": -0.1, "accuracy": 17, "source": source}
    return body


def item(api_key: str | None, rep: dict[str, Any]) -> dict[str, Any]:
    return {"api_key": api_key, "report": rep}


def utc_dates() -> set[tuple[str, str, str]]:
    now = datetime.now(UTC)
    return {(f"{now:%Y}", f"{now:%m}", f"{now:%d}")}


def no_sleep(seconds: float) -> None:
    pytest.fail(f"unexpected retry (sleep {seconds} s)")


def unzip(body: bytes) -> Any:
    return json.loads(gzip.decompress(body))


# --- S3 -------------------------------------------------------------------------------


def s3_exporter(
    name: str, url: str, endpoint_url: str, make_settings: Callable[..., Settings], metrics: Metrics
) -> Iterator[Exporter]:
    exporter = make_exporter(name, "s3", url, make_settings(S3_ENDPOINT_URL=endpoint_url), metrics)
    assert isinstance(exporter, S3Exporter)
    yield exporter
    exporter.close()


def test_s3_spec_example_sends_one_object_per_partition(
    s3_bucket: S3Bucket, make_settings: Callable[..., Settings], metrics: RecordingMetrics
) -> None:
    batches = {
        Partition("gnss", "test"): [item("test", report(0)), item("test", report(1))],
        Partition("gnss", "e5444-794"): [item("e5444-794", report(2))],
        Partition("fused", "e5444-794"): [item("e5444-794", report(3, source="fused"))],
        Partition("gnss", None): [item(None, report(4))],
        Partition("gnss", "no-position"): [item("no-position", report(5, position=False))],
    }
    url = f"s3://{s3_bucket.name}/{SPEC_TEMPLATE}"
    dates = utc_dates()
    for exporter in s3_exporter("backup", url, s3_bucket.endpoint_url, make_settings, metrics):
        for partition, items in batches.items():
            assert send_with_retries(exporter, items, partition, metrics=metrics, sleep=no_sleep)
    dates |= utc_dates()  # the send may have crossed midnight

    objects = s3_bucket.objects()
    assert len(objects) == 5
    by_segments: dict[tuple[str, str], Any] = {}
    for key, reply in objects.items():
        match = re.fullmatch(
            r"backups/([^/]+)/([^/]+)/(\d{4})/(\d{2})/(\d{2})/([0-9a-f]{32})\.json\.gz", key
        )
        assert match, key
        source, api_key, year, month, day, _ = match.groups()
        assert (year, month, day) in dates
        assert reply["ContentEncoding"] == "gzip"
        assert reply["ContentType"] == "application/json"
        by_segments[(source, api_key)] = unzip(reply["Data"])
    assert set(by_segments) == {
        ("gnss", "test"),
        ("gnss", "no_key"),
        ("gnss", "no-position"),
        ("gnss", "e5444-794"),
        ("fused", "e5444-794"),
    }
    for partition, items in batches.items():
        segments = (partition.source or "", partition.api_key or "no_key")
        assert by_segments[segments] == {"items": [it["report"] for it in items]}
    assert metrics.counted("data.export.upload") == [{"key": "backup", "status": "success"}] * 5
    assert metrics.counted("data.export.batch") == [{"key": "backup"}] * 5


def test_s3_key_dates_are_zero_padded_quirk_13_fixed() -> None:
    when = datetime(2015, 7, 5, 23, 59, tzinfo=UTC)
    key = object_key(SPEC_TEMPLATE + "/", Partition("gnss", None), when, "abc")
    assert key == "backups/gnss/no_key/2015/07/05/abc.json.gz"


def test_s3_object_ids_are_uuid4_not_uuid1_quirk_13_fixed(
    s3_bucket: S3Bucket, make_settings: Callable[..., Settings], metrics: RecordingMetrics
) -> None:
    url = f"s3://{s3_bucket.name}/flat"
    for exporter in s3_exporter("backup", url, s3_bucket.endpoint_url, make_settings, metrics):
        exporter.send([item("test", report(0))], Partition("gnss", "test"))
        exporter.send([item("test", report(1))], Partition("gnss", "test"))
    keys = sorted(s3_bucket.objects())
    assert len(keys) == 2
    for key in keys:
        prefix, _, name = key.partition("/")
        assert prefix == "flat"
        assert uuid.UUID(name.removesuffix(".json.gz")).version == 4


def test_s3_missing_bucket_raises_export_error_and_counts_failure(
    s3_bucket: S3Bucket, make_settings: Callable[..., Settings], metrics: RecordingMetrics
) -> None:
    url = f"s3://{s3_bucket.name}-missing/{SPEC_TEMPLATE}"
    for exporter in s3_exporter("backup", url, s3_bucket.endpoint_url, make_settings, metrics):
        with pytest.raises(ExportError, match="NoSuchBucket"):
            exporter.send([item("test", report(0))], Partition("gnss", "test"))
    assert metrics.counted("data.export.upload") == [{"key": "backup", "status": "failure"}]


# --- geosubmit ------------------------------------------------------------------------


def geosubmit(url: str, metrics: Metrics, settings: Settings) -> Exporter:
    exporter = make_exporter("test", "geosubmit", url, settings, metrics)
    assert isinstance(exporter, GeosubmitExporter)
    return exporter


def test_geosubmit_posts_one_gzip_batch_spec_23_5(
    provider: Provider, metrics: RecordingMetrics, settings: Settings
) -> None:
    provider.reply(200, {}, path="/v2/geosubmit")
    items = [
        item("test", report(0)),
        item(None, report(1)),  # an unknown key is queued as null
        item(None, report(2, source="fused")),
        item("test", report(3, position=False)),
    ]
    exporter = geosubmit(provider.url("/v2/geosubmit"), metrics, settings)

    assert send_with_retries(exporter, items, Partition(), metrics=metrics, sleep=no_sleep)

    assert len(provider.requests) == 1
    request = provider.requests[0]
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert headers["content-encoding"] == "gzip"
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "ichnaea"
    sent = unzip(request.body)
    assert sent == {"items": [it["report"] for it in items]}
    assert "api_key" not in json.dumps(sent)
    assert metrics.counted("data.export.upload") == [{"key": "test", "status": "200"}]
    assert metrics.counted("data.export.batch") == [{"key": "test"}]
    assert metrics.timed("data.export.upload.timing") == [{"key": "test"}]


def test_geosubmit_drops_opted_out_networks_and_keeps_other_ssids_quirk_19_replaced(
    provider: Provider, metrics: RecordingMetrics, settings: Settings
) -> None:
    """Issue 8 item 18: a ``_nomap``/``_optout`` network never leaves the service,
    even when it was queued before the fan-out filtered it; other names go as queued."""
    provider.reply(200, {})
    queued = report(0)
    queued["wifiAccessPoints"] += [
        {"macAddress": "01:23:45:67:89:ff", "ssid": "home_nomap"},
        {"macAddress": "01:23:45:67:89:fe", "ssid": "x_OptOut"},
    ]
    geosubmit(provider.url(), metrics, settings).send([item("test", queued)], Partition())
    (wifi,) = unzip(provider.requests[0].body)["items"][0]["wifiAccessPoints"]
    assert wifi == {"macAddress": "01:23:45:67:89:00", "ssid": "home", "signalStrength": -51}


def test_geosubmit_non_2xx_raises_export_error_after_counting_status(
    provider: Provider, metrics: RecordingMetrics, settings: Settings
) -> None:
    provider.reply(503, {"error": "busy"})
    exporter = geosubmit(provider.url(), metrics, settings)
    with pytest.raises(ExportError, match="503"):
        exporter.send([item("test", report(0))], Partition())
    assert metrics.counted("data.export.upload") == [{"key": "test", "status": "503"}]


def test_geosubmit_retries_once_then_succeeds_spec_23_6(
    provider: Provider, metrics: RecordingMetrics, settings: Settings
) -> None:
    provider.reply(500, {})
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        provider.reply(200, {})  # the target recovers while we wait

    exporter = geosubmit(provider.url(), metrics, settings)
    assert send_with_retries(
        exporter, [item("test", report(0))], Partition(), metrics=metrics, sleep=sleep
    )

    assert len(provider.requests) == 2
    assert sleeps == [1.0]
    assert metrics.counted("data.export.upload") == [
        {"key": "test", "status": "500"},
        {"key": "test", "status": "200"},
    ]
    assert metrics.counted("data.export.batch") == [{"key": "test"}]
    assert len(metrics.timed("data.export.upload.timing")) == 2


def test_geosubmit_gives_up_after_three_attempts_without_a_final_sleep(
    provider: Provider, metrics: RecordingMetrics, settings: Settings
) -> None:
    provider.reply(500, {})
    sleeps: list[float] = []
    exporter = geosubmit(provider.url(), metrics, settings)

    ok = send_with_retries(
        exporter, [item("test", report(0))], Partition(), metrics=metrics, sleep=sleeps.append
    )

    assert ok is False
    assert len(provider.requests) == 3
    assert sleeps == [1.0, 2.0]
    assert metrics.counted("data.export.batch") == []
    assert metrics.timed("data.export.upload.timing") == [{"key": "test"}] * 3


def test_geosubmit_connection_refused_raises_export_error(
    metrics: RecordingMetrics, settings: Settings
) -> None:
    # A bound socket that does not listen: connecting to it is refused at once.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        exporter = geosubmit(f"http://127.0.0.1:{port}/", metrics, settings)
        with pytest.raises(ExportError, match="ConnectError"):
            exporter.send([item("test", report(0))], Partition())
    assert metrics.counted("data.export.upload") == []


def test_geosubmit_timeout_raises_export_error(
    provider: Provider, metrics: RecordingMetrics
) -> None:
    provider.reply(200, {}, delay_s=2.0)
    exporter = GeosubmitExporter("test", provider.url(), metrics=metrics, timeout_s=0.2)
    with pytest.raises(ExportError, match="Timeout"):
        exporter.send([item("test", report(0))], Partition())


# --- file -----------------------------------------------------------------------------


def test_file_writes_each_batch_atomically_under_the_formatted_directory(
    tmp_path: Path, metrics: RecordingMetrics, settings: Settings
) -> None:
    root = tmp_path / "archive"
    exporter = make_exporter("archive", "file", f"file://{root}/{SPEC_TEMPLATE}", settings, metrics)
    assert isinstance(exporter, FileExporter)
    batches = {
        Partition("gnss", "test"): [item("test", report(0)), item("test", report(1))],
        Partition("fused", None): [item(None, report(2, source="fused"))],
    }
    dates = utc_dates()
    for partition, items in batches.items():
        assert send_with_retries(exporter, items, partition, metrics=metrics, sleep=no_sleep)
    dates |= utc_dates()

    everything = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    assert len(everything) == 2  # no temporary files left behind
    found: dict[tuple[str, str], Any] = {}
    for path in everything:
        backups, source, api_key, year, month, day, name = path.parts
        assert backups == "backups"
        assert (year, month, day) in dates
        assert re.fullmatch(r"[0-9a-f]{32}\.json\.gz", name)
        assert stat.S_IMODE((root / path).stat().st_mode) == 0o600
        found[(source, api_key)] = unzip((root / path).read_bytes())
    assert found == {
        ("gnss", "test"): {"items": [report(0), report(1)]},
        ("fused", "no_key"): {"items": [report(2, source="fused")]},
    }
    assert metrics.counted("data.export.upload") == [{"key": "archive", "status": "success"}] * 2


def test_file_partition_values_cannot_leave_the_archive(
    tmp_path: Path, metrics: RecordingMetrics
) -> None:
    root = tmp_path / "archive"
    exporter = FileExporter("archive", f"file://{root}/{{source}}/{{api_key}}", metrics=metrics)
    exporter.send([item(None, report(0))], Partition("..", "../../escaped"))
    (written,) = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written.parent.parent.parent == root
    assert written.parent.parent.name == "_"
    assert written.parent.name == ".._.._escaped"


def test_file_unwritable_directory_raises_export_error(
    tmp_path: Path, metrics: RecordingMetrics
) -> None:
    (tmp_path / "taken").write_text("a file where a directory should be")
    exporter = FileExporter("archive", f"file://{tmp_path}/taken/{{source}}", metrics=metrics)
    with pytest.raises(ExportError, match="taken"):
        exporter.send([item("test", report(0))], Partition("gnss", "test"))
    assert metrics.counted("data.export.upload") == [{"key": "archive", "status": "failure"}]


# --- dummy, factory, retry loop -------------------------------------------------------


def test_dummy_send_succeeds_and_counts_the_batch(
    metrics: RecordingMetrics, settings: Settings
) -> None:
    exporter = make_exporter("everything", "dummy", None, settings, metrics)
    assert exporter is not None
    items = [item("test", report(0))]
    assert send_with_retries(exporter, items, Partition(), metrics=metrics, sleep=no_sleep)
    assert metrics.counted("data.export.batch") == [{"key": "everything"}]
    assert metrics.timed("data.export.upload.timing") == [{"key": "everything"}]


def test_make_exporter_returns_none_for_internal_without_logging(
    metrics: RecordingMetrics, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="ichnaea.pipeline.export.exporters"):
        assert make_exporter("internal", "internal", None, settings, metrics) is None
    assert caplog.records == []


@pytest.mark.parametrize(
    ("schema", "url", "reason"),
    [
        ("ftp", "ftp://example.com/", "unknown schema"),
        ("geosubmit", None, "not an http"),
        ("s3", "s3://bucket/{year}/{hour}", "only {source}"),
        ("file", "file://relative/dir", "file:///absolute"),
    ],
)
def test_make_exporter_logs_unusable_config_once_and_returns_none(
    schema: str,
    url: str | None,
    reason: str,
    metrics: RecordingMetrics,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = f"cfg-{uuid.uuid4().hex}"  # "once" is per process: a fresh name per test
    with caplog.at_level(logging.ERROR, logger="ichnaea.pipeline.export.exporters"):
        assert make_exporter(name, schema, url, settings, metrics) is None
        assert make_exporter(name, schema, url, settings, metrics) is None
    assert len(caplog.records) == 1
    assert name in caplog.text
    assert reason in caplog.text


class Broken:
    """An exporter with a bug: its error is not an ExportError."""

    name = "broken"
    calls = 0

    def send(self, items: Sequence[Mapping[str, Any]], partition: Partition) -> None:
        self.calls += 1
        raise KeyError("report")

    def close(self) -> None:
        pass


def test_send_with_retries_propagates_other_errors_without_retrying(
    metrics: RecordingMetrics,
) -> None:
    exporter = Broken()
    with pytest.raises(KeyError):
        send_with_retries(exporter, [], Partition(), metrics=metrics, sleep=no_sleep)
    assert exporter.calls == 1
    assert metrics.timed("data.export.upload.timing") == [{"key": "broken"}]
    assert metrics.counted("data.export.batch") == []


def test_send_with_retries_needs_at_least_one_attempt(metrics: RecordingMetrics) -> None:
    with pytest.raises(ValueError, match="attempts"):
        send_with_retries(Broken(), [], Partition(), metrics=metrics, attempts=0)
