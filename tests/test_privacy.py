"""The Wi-Fi opt-out (``_nomap``, ``_optout``) on every path a report can take.

The rule itself (``ichnaea.privacy``), then each way in: a submission, a
report another producer put on ``update_incoming``, one put straight on the
internal queue, a locate query report and ``ichnaea replay`` of an archive.
Each path ends with the same checks: only the normal network is learned,
and no queue, archive file or export body holds an opted-out one.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ichnaea.__main__ import cli
from ichnaea.broker import keyspace
from ichnaea.broker.queue import decode_item, encode_item
from ichnaea.codecs import encode_mac
from ichnaea.models.all import metadata
from ichnaea.pipeline.ingest.observations import flatten_report
from ichnaea.privacy import is_opted_out, strip_opted_out
from ichnaea.reports.formats import parse_v0, parse_v1, parse_v2
from ichnaea.worker.jobs import QUEUE_JOBS, run_job
from tests.fixtures_pipeline import Pipeline

NORMAL = "3680873e9b83"  # "my network", shard 8
# Opted-out networks, one per way of writing the markers (all in shard a).
OPTED_OUT = {
    "a0a0a0a00001": "foo_nomap",
    "a0a0a0a00002": "bar_optout_x",
    "a0a0a0a00003": "FOO_NOMAP",
    "a0a0a0a00004": "Home_NoMap_5G",
}
POSITION = {"latitude": 51.5, "longitude": -0.1, "accuracy": 10.0}


def wifi_list() -> list[dict[str, Any]]:
    networks = [{"macAddress": mac, "ssid": ssid} for mac, ssid in OPTED_OUT.items()]
    return [*networks, {"macAddress": NORMAL, "ssid": "my network"}]


def report() -> dict[str, Any]:
    return {
        "timestamp": 1_700_000_000_000,
        "position": dict(POSITION),
        "wifiAccessPoints": wifi_list(),
    }


def assert_clean(text: str) -> None:
    """No opted-out MAC or name in some stored or exported text (JSON)."""
    for mac, ssid in OPTED_OUT.items():
        assert mac not in text.lower(), f"{mac} ({ssid}) leaked: {text[:300]}"
        assert ssid not in text, f"{ssid} leaked: {text[:300]}"


def queue_text(pipeline: Pipeline, queue: str) -> str:
    return json.dumps([decode_item(raw) for raw in pipeline.redis.lrange(queue, 0, -1)])


def learned_wifi(pipeline: Pipeline) -> list[bytes]:
    return sorted(
        row["mac"]
        for name in metadata.tables
        if name.startswith("wifi_shard_")
        for row in pipeline.rows(name)
    )


def archive_text(root: Path) -> str:
    files = sorted(root.rglob("*.json.gz"))
    assert files, "nothing was archived"
    return "".join(gzip.decompress(path.read_bytes()).decode() for path in files)


def with_archive(pipeline: Pipeline, root: Path) -> None:
    pipeline.export_config("archive", batch=1, schema="file", url=f"file://{root}/{{source}}")


def run_incoming_only(pipeline: Pipeline) -> None:
    (incoming,) = (job for job in QUEUE_JOBS if job.name == "update_incoming")
    while run_job(incoming, pipeline.resources):
        pass


# -- the rule ------------------------------------------------------------------


@pytest.mark.parametrize(
    "ssid",
    ["foo_nomap", "FOO_NOMAP", "Home_NoMap", "Home_nomap_5G", "bar_optout_x", "x_OPTOUT",
     "home_no\0map", "_nomap"],
)  # fmt: skip
def test_ssid_with_an_opt_out_marker_anywhere_in_any_case_is_opted_out(ssid: str) -> None:
    assert is_opted_out(ssid)


@pytest.mark.parametrize(
    "ssid",
    [None, "", "nomap", "home-nomap", "home nomap", "optout", "my network", 42, ["_nomap"]],
)
def test_ssid_without_a_marker_is_not_opted_out(ssid: object) -> None:
    assert not is_opted_out(ssid)


def test_strip_keeps_everything_but_the_opted_out_networks() -> None:
    original = report()
    stripped = strip_opted_out(original)
    assert stripped["wifiAccessPoints"] == [{"macAddress": NORMAL, "ssid": "my network"}]
    assert stripped["position"] == POSITION and stripped["timestamp"] == original["timestamp"]
    assert len(original["wifiAccessPoints"]) == 5  # the input is not changed


@pytest.mark.parametrize(
    "value",
    [{"wifiAccessPoints": [{"macAddress": NORMAL}, "junk", None]}, {"wifiAccessPoints": None},
     {"n": 1}, [1, 2], None, "text"],
)  # fmt: skip
def test_strip_returns_anything_without_opted_out_networks_itself(value: object) -> None:
    assert strip_opted_out(value) is value


# -- submit parsing and the pipeline's own gates -----------------------------------


def test_every_submit_schema_drops_opted_out_networks() -> None:
    v2 = parse_v2({"items": [report()]})
    v1 = parse_v1({"items": [{**POSITION, "wifiAccessPoints": wifi_list()}]})
    v0_wifi = [{"key": w["macAddress"], "ssid": w["ssid"]} for w in wifi_list()]
    v0 = parse_v0({"items": [{"lat": 51.5, "lon": -0.1, "wifi": v0_wifi}]})
    for (parsed,) in (v2, v1, v0):
        assert [w["macAddress"] for w in parsed["wifiAccessPoints"]] == [NORMAL]


def test_a_submitted_report_of_only_opted_out_networks_is_not_queued() -> None:
    only = {"position": POSITION, "wifiAccessPoints": wifi_list()[:-1]}
    assert parse_v2({"items": [only]}) == []


def test_flatten_drops_opted_out_networks_of_reports_queued_by_anyone() -> None:
    flat = flatten_report(report())
    assert flat is not None
    assert [entry["mac"] for entry in flat["wifi"]] == [NORMAL]


# -- every path, end to end ---------------------------------------------------------


def test_submitted_opted_out_networks_are_never_queued_learned_or_archived(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    with_archive(pipeline, tmp_path)
    pipeline.api_key("test")
    pipeline.submit([report()], api_key="test")
    assert_clean(queue_text(pipeline, keyspace.INCOMING))
    pipeline.run()
    assert learned_wifi(pipeline) == [encode_mac(NORMAL)]
    archived = archive_text(tmp_path)
    assert NORMAL in archived
    assert_clean(archived)


def test_reports_queued_by_other_producers_lose_opted_out_networks_before_any_export(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """A report put on ``update_incoming`` without the submit API (an older web
    process, a script): the fan-out strips it, so the internal queue, the
    archive queue and the archive never see the opted-out networks."""
    with_archive(pipeline, tmp_path)
    only_opted_out = {**report(), "wifiAccessPoints": wifi_list()[:-1]}
    items = [{"api_key": None, "source": "gnss", "report": r} for r in (report(), only_opted_out)]
    pipeline.redis.rpush(keyspace.INCOMING, *(encode_item(item) for item in items))
    run_incoming_only(pipeline)
    internal = queue_text(pipeline, "queue_export_internal")
    assert NORMAL in internal
    assert_clean(internal)
    (archive_queue,) = (
        key.decode() for key in pipeline.redis.smembers("export_partitions:archive")
    )
    assert_clean(queue_text(pipeline, archive_queue))
    # The report that held only opted-out networks is not passed on at all.
    assert pipeline.redis.llen("queue_export_internal") == 1
    pipeline.run()
    assert learned_wifi(pipeline) == [encode_mac(NORMAL)]
    assert_clean(archive_text(tmp_path))


def test_reports_put_straight_on_the_internal_queue_teach_no_opted_out_network(
    pipeline: Pipeline,
) -> None:
    item = {"api_key": None, "report": report()}
    pipeline.redis.rpush("queue_export_internal", encode_item(item))
    pipeline.run()
    assert learned_wifi(pipeline) == [encode_mac(NORMAL)]


def test_locate_query_reports_are_stored_without_opted_out_networks(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """The query is answered with every network; its stored query report has none
    of the opted-out ones, and nothing of them is learned or archived."""
    pipeline.api_key("test")
    known = ["3680873e9b84", "3680873e9b85"]
    pipeline.submit(
        [{"position": POSITION, "wifiAccessPoints": [{"macAddress": mac} for mac in known]}]
    )
    pipeline.run()
    with_archive(pipeline, tmp_path)
    body = {
        "considerIp": False,
        "wifiAccessPoints": [{"macAddress": m} for m in known] + wifi_list(),
    }
    response = pipeline.client.post("/v1/geolocate?key=test", json=body)
    assert response.status_code == 200, response.text
    stored = queue_text(pipeline, keyspace.INCOMING)
    assert known[0] in stored  # a query report was stored
    assert_clean(stored)
    pipeline.run()
    learned = learned_wifi(pipeline)
    assert encode_mac(known[0]) in learned
    assert not {encode_mac(mac) for mac in OPTED_OUT} & set(learned)
    assert_clean(archive_text(tmp_path))


def test_replay_of_an_archive_with_opted_out_networks_learns_nothing_of_them(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    path = tmp_path / "archive" / "gnss" / "one.json.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(json.dumps({"items": [report(), report()]}).encode()))
    settings = pipeline.settings
    env = {
        "DB_READWRITE_URI": settings.db_readwrite_url,
        "REDIS_URI": str(settings.redis_url),
        "ICHNAEA_DATA_DIR": str(settings.data_dir),
    }
    result = CliRunner().invoke(cli, ["replay", str(path.parent), "--process"], env=env)
    assert result.exit_code == 0, result.output
    assert "replayed 2 reports from 1 files" in result.output
    (row,) = pipeline.rows("wifi_shard_8")
    assert (row["mac"], row["samples"]) == (encode_mac(NORMAL), 2)
    assert learned_wifi(pipeline) == [encode_mac(NORMAL)]
