"""``ichnaea replay`` and ``ichnaea deadletter`` on real storage."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ichnaea.__main__ import cli
from ichnaea.broker import keyspace
from ichnaea.broker.queue import decode_item, encode_item
from ichnaea.codecs import encode_mac
from tests._support import embedded_env
from tests.fixtures_pipeline import Pipeline
from tests.test_end_to_end import _answers


def cli_env(pipeline: Pipeline) -> dict[str, str]:
    settings = pipeline.settings
    return {
        "DB_READWRITE_URI": settings.db_readwrite_url,
        "REDIS_URI": str(settings.redis_url),
        "ICHNAEA_DATA_DIR": str(settings.data_dir),
    }


def archive(path: Path, reports: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(json.dumps({"items": reports}).encode()))


def test_replay_rebuilds_stations_from_an_archive_and_names_bad_files(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    report = {
        "timestamp": 1_700_000_000_000,
        "position": {"latitude": 51.5, "longitude": -0.1, "accuracy": 10, "source": "gnss"},
        "wifiAccessPoints": [{"macAddress": "3680873e9b83", "ssid": "x"}],
    }
    archive(tmp_path / "a" / "gnss" / "k" / "one.json.gz", [report, report])
    archive(tmp_path / "a" / "gnss" / "k" / "two.json.gz", [report])
    (tmp_path / "a" / "broken.json.gz").write_bytes(gzip.compress(b'{"items": [\n  {"x": 1,}]}'))
    result = CliRunner().invoke(
        cli, ["replay", str(tmp_path / "a"), "--process"], env=cli_env(pipeline)
    )
    assert result.exit_code == 1, result.output
    assert "replayed 3 reports from 2 files" in result.output
    assert "broken.json.gz: line 2 column 11" in result.output
    (row,) = pipeline.rows("wifi_shard_8")
    assert (row["mac"], row["samples"]) == (encode_mac("3680873e9b83"), 3)


def test_replay_of_a_missing_path_fails_with_its_name(pipeline: Pipeline, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["replay", str(tmp_path / "nope")], env=cli_env(pipeline))
    assert result.exit_code == 1
    assert "nope: no such file or directory" in result.output


def test_deadletter_list_and_requeue(pipeline: Pipeline) -> None:
    queue = "queue_export_backup"
    letter = {"queue": queue, "failed_at": 0, "items": [{"api_key": None, "report": {"n": 1}}]}
    pipeline.redis.rpush(keyspace.dead_letter(queue), encode_item(letter))
    env = cli_env(pipeline)
    listed = CliRunner().invoke(cli, ["deadletter", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert (
        f"{keyspace.dead_letter(queue)}[0]  failed 1970-01-01T00:00:00+00:00  1 items"
        in listed.output
    )
    requeued = CliRunner().invoke(cli, ["deadletter", "requeue"], env=env)
    assert "requeued 1 items" in requeued.output
    assert [decode_item(raw) for raw in pipeline.redis.lrange(queue, 0, -1)] == letter["items"]
    assert not pipeline.redis.exists(keyspace.dead_letter(queue))


def test_status_lists_busy_queues_dead_letters_and_the_missing_scheduler(
    pipeline: Pipeline,
) -> None:
    import json as json_module

    from ichnaea.worker.jobs import data_queue_names

    pipeline.redis.rpush("update_wifi_3", b"{}", b"{}")
    pipeline.redis.rpush(keyspace.dead_letter("queue_export_backup"), encode_item({"items": []}))
    pipeline.redis.rpush(keyspace.undecodable(keyspace.INCOMING), b"junk")
    pipeline.redis.hset("scheduler:slots", "reclaim", 59_000_000)
    env = cli_env(pipeline)
    result = CliRunner().invoke(cli, ["status"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:3] == [
        "queues (waiting items):",
        "  update_wifi_3" + " " * 27 + "          2",
        f"  ({len(data_queue_names(pipeline.resources)) - 1} other queues empty)",
    ]
    assert "other queues empty)" in result.output
    # Keys as redis-cli takes them (tagged by their queue: ichnaea.broker.keyspace).
    assert "dead letters: dead_letter:{queue_export_backup} 1" in result.output
    assert "undecodable: {update_incoming}:undecodable 1" in result.output
    assert "PROBLEM: no scheduler holds the lock" in result.output
    assert "reclaim                  last due 2026-02-02T02:40:00+00:00" in result.output
    found = json_module.loads(CliRunner().invoke(cli, ["status", "--json"], env=env).output)
    assert found["queues"]["update_wifi_3"] == 2 and found["queues"]["update_incoming"] == 0
    assert found["claimed"] == 0 and found["last_runs"]["cleanup"] is None


def test_status_fails_when_redis_is_down(pipeline: Pipeline) -> None:
    env = {**cli_env(pipeline), "REDIS_URI": "redis://127.0.0.1:1/0"}
    result = CliRunner().invoke(cli, ["status"], env=env)
    assert result.exit_code == 1
    assert "PROBLEM: redis unreachable" in result.output


REPLAY_REPORT = {
    "timestamp": 1_700_000_000_000,
    "position": {"latitude": 51.5, "longitude": -0.1, "accuracy": 10, "source": "gnss"},
    "wifiAccessPoints": [{"macAddress": "3680873e9b83", "ssid": "x"}],
}


def test_replay_waits_while_export_queues_hold_the_backlog(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 8 item 7: replay measures the backlog as submissions do, export queues included."""
    internal = "queue_export_internal"
    pipeline.redis.rpush(internal, *[encode_item({"n": n}) for n in range(3)])
    archive(tmp_path / "one.json.gz", [REPLAY_REPORT, REPLAY_REPORT])
    waits: list[int] = []

    def worker_catches_up(seconds: float) -> None:
        # Stands in for a worker: what replay waited for is exported meanwhile.
        waits.append(pipeline.redis.llen(internal) + pipeline.redis.llen(keyspace.INCOMING))
        pipeline.redis.delete(internal)

    monkeypatch.setattr("time.sleep", worker_catches_up)
    env = {**cli_env(pipeline), "MAX_QUEUE_BACKLOG": "4"}
    result = CliRunner().invoke(cli, ["replay", str(tmp_path), "--through-incoming"], env=env)
    assert result.exit_code == 0, result.output
    assert waits == [3]  # 3 waiting + 2 replayed > 4: it waited once
    assert pipeline.redis.llen(keyspace.INCOMING) == 2


@pytest.mark.timeout(120)
def test_replay_of_a_file_larger_than_the_backlog_completes(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """The reports go in chunks that fit, so a file never waits for room it cannot get."""
    archive(tmp_path / "big.json.gz", [REPLAY_REPORT] * 7)
    env = {**cli_env(pipeline), "MAX_QUEUE_BACKLOG": "3"}
    result = CliRunner().invoke(cli, ["replay", str(tmp_path), "--process"], env=env)
    assert result.exit_code == 0, result.output
    assert "replayed 7 reports from 1 files" in result.output
    (row,) = pipeline.rows("wifi_shard_8")
    assert row["samples"] == 7


def test_one_off_commands_start_the_embedded_redis_for_their_run(tmp_path: Path) -> None:
    # A new user on the embedded defaults runs `ichnaea status` (or import,
    # replay, deadletter) with no `serve` running: the command starts the
    # data directory's embedded Redis for its run and stops it again, instead
    # of failing with "No such file or directory" on the socket.
    data_dir = tmp_path / "d"
    env = embedded_env(data_dir)
    migrate = subprocess.run(
        [sys.executable, "-m", "ichnaea", "migrate"], env=env, capture_output=True, text=True
    )
    assert migrate.returncode == 0, migrate.stderr
    done = subprocess.run(
        [sys.executable, "-m", "ichnaea", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "queues" in json.loads(done.stdout)
    socket_path = data_dir / "redis.sock"
    assert not socket_path.exists() or not _answers(socket_path)
