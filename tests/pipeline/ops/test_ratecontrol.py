"""The locate sample-rate controller (spec pipeline.md section 17).

Every test runs against the Redis server and the embedded Redis
(``redis_client``); the history-length reads run against MariaDB and SQLite.
The InnoDB history length of a quiet test server is near 0, so the purging
tests pass the length to :func:`step_rate_controller` directly.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from ichnaea.broker import keyspace
from ichnaea.pipeline.ops.ratecontrol import (
    PidState,
    control_sample_rate,
    pid_step,
    step_rate_controller,
)
from ichnaea.repositories.monitoring import read_history_length
from tests._support import RecordingMetrics
from tests.fixtures_db import db_prefix

# Queues, limits, counters and caches: also on a Redis Cluster.
pytestmark = pytest.mark.redis_cluster

NOW = 10_000.0  # monotonic seconds
MINUTE_AGO = NOW - 60.0

# The controller as an operator would configure it.
CONFIGURED = {
    "rate_controller_enabled": "1",
    "rate_controller_target": "1000",
    "rate_controller_kp": "1",
    "rate_controller_ki": "0.002",
    "rate_controller_kd": "0.2",
    "rate_controller_trx_purging": "0",
    "rate_controller_trx_min": "1000",
    "rate_controller_trx_max": "1000000",
}
PID_GAUGES = {
    f"rate_control.locate.{name}"
    for name in ("target", "kp", "ki", "kd", "pterm", "iterm", "dterm")
}
TRX_GAUGES = {"trx_history.min", "trx_history.max", "trx_history.purging"}


def configure(client: redis.Redis, **overrides: str | None) -> None:
    """Set the configured controller, with ``overrides`` (None deletes a key)."""
    values: dict[str, str | None] = {**CONFIGURED, **overrides}
    for key, value in values.items():
        if value is None:
            client.delete(key)
        else:
            client.set(key, value)


def get(client: redis.Redis, key: str) -> str | None:
    raw = client.get(key)
    return raw.decode() if isinstance(raw, bytes) else raw


def saved_state(client: redis.Redis) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(client.get("rate_controller_state") or b"null")
    return state


def save_state(client: redis.Redis, **values: float) -> None:
    state = {
        "state": "running",
        "p_term": 1000.0,
        "i_term": 0.0001,
        "d_term": 0.0,
        "last_input": 0,
        "last_output": 1000.0,
        "last_time": MINUTE_AGO,
    }
    client.set("rate_controller_state", json.dumps({**state, **values}))


def is_negative_zero(value: float) -> bool:
    return value == 0 and math.copysign(1.0, value) < 0


def run(
    client: redis.Redis, *, backlog: int = 0, history_length: int | None = None
) -> RecordingMetrics:
    metrics = RecordingMetrics()
    step_rate_controller(client, metrics, backlog=backlog, history_length=history_length, now=NOW)
    return metrics


# --- the PID and the sample rate ----------------------------------------------------------


def test_first_run_with_empty_queues_keeps_full_rate_and_saves_state(
    redis_client: redis.Redis,
) -> None:
    configure(redis_client)
    metrics = RecordingMetrics()

    rate = step_rate_controller(redis_client, metrics, backlog=0, history_length=None, now=NOW)

    assert rate == 100.0
    assert get(redis_client, keyspace.SAMPLE_RATE) == "100.0"
    assert get(redis_client, "rate_controller_enabled") == "1"
    assert get(redis_client, "rate_controller_trx_purging") == "0"
    state = saved_state(redis_client)
    # A new PID has no elapsed time (dt = 1e-16) and no previous input.
    assert state == {
        "state": "running",
        "p_term": 1000.0,
        "i_term": pytest.approx(0.002 * 1000 * 1e-16, abs=1e-20),
        "d_term": 0.0,
        "last_input": 0,
        "last_output": 1000.0,
        "last_time": NOW,
    }
    assert is_negative_zero(state["d_term"])
    assert metrics.gauge_value("rate_control.locate.target") == 1000
    assert metrics.gauge_value("rate_control.locate.kp") == 1.0
    assert metrics.gauge_value("rate_control.locate.ki") == 0.002
    assert metrics.gauge_value("rate_control.locate.kd") == 0.2
    assert metrics.gauge_value("rate_control.locate.pterm") == 1000.0
    assert metrics.gauge_value("rate_control.locate.iterm") == state["i_term"]
    assert is_negative_zero(metrics.gauge_value("rate_control.locate.dterm"))
    assert metrics.gauge_value("rate_control.locate") == 100.0
    assert all(tags == {} for _, _, tags in metrics.gauges)
    # No history length was read, so no trx gauges (and no queue gauges: the caller's job).
    assert metrics.gauge_names() == PID_GAUGES | {"rate_control.locate"}


def test_saved_state_resumes_with_small_backlog_at_full_rate(
    redis_client: redis.Redis,
) -> None:
    configure(redis_client)
    save_state(redis_client, last_input=0, i_term=0.0001, last_time=MINUTE_AGO)

    metrics = run(redis_client, backlog=10)

    state = saved_state(redis_client)
    assert state["p_term"] == 990.0
    # The integral grows by ki * error * dt over the minute since the last run.
    assert state["i_term"] == pytest.approx(0.0001 + 0.002 * 990 * 60)
    # Derivative on the input: the backlog grew by 10 in 60 s.
    assert state["d_term"] == pytest.approx(-0.2 * 10 / 60)
    assert state["last_input"] == 10
    assert state["last_output"] == 1000.0  # 990 + 118.8 - 0.03, limited to the target
    assert state["last_time"] == NOW
    assert get(redis_client, keyspace.SAMPLE_RATE) == "100.0"
    assert metrics.gauge_value("rate_control.locate") == 100.0


def test_target_lowered_below_backlog_stops_sampling(redis_client: redis.Redis) -> None:
    configure(redis_client, rate_controller_target="5")
    save_state(redis_client, p_term=990.0, last_input=10, i_term=0.0001)

    metrics = run(redis_client, backlog=10)

    state = saved_state(redis_client)
    assert state["p_term"] == -5.0
    assert state["i_term"] == 0.0  # 0.0001 - 0.002 * 5 * 60, limited to [0, 5]
    assert state["d_term"] == 0.0  # the backlog did not change
    assert state["last_output"] == 0.0
    assert get(redis_client, keyspace.SAMPLE_RATE) == "0.0"
    assert metrics.gauge_value("rate_control.locate") == 0.0
    assert metrics.gauge_value("rate_control.locate.target") == 5


def test_output_between_limits_gives_proportional_rate(redis_client: redis.Redis) -> None:
    configure(redis_client, rate_controller_ki="0", rate_controller_kd="0")

    metrics = run(redis_client, backlog=600)

    assert saved_state(redis_client)["last_output"] == 400.0
    assert get(redis_client, keyspace.SAMPLE_RATE) == "40.0"
    assert metrics.gauge_value("rate_control.locate") == 40.0


def test_incomplete_state_restarts_pid(redis_client: redis.Redis) -> None:
    configure(redis_client, rate_controller_target="9")
    redis_client.set(
        "rate_controller_state",
        json.dumps(
            {
                "state": "running",
                "p_term": 990.0,
                "i_term": 5.0,
                "d_term": 0.0,
                "last_input": 0,
                "last_output": 9.0,
            }
        ),  # no last_time
    )

    run(redis_client, backlog=10)

    state = saved_state(redis_client)
    assert state["p_term"] == -1.0
    assert state["i_term"] == 0.0  # restarted, not 5.0
    assert is_negative_zero(state["d_term"])  # no previous input
    assert state["last_time"] == NOW
    assert get(redis_client, keyspace.SAMPLE_RATE) == "0.0"


@pytest.mark.parametrize(
    "raw",
    ["not json", "[]", '{"state": "stopped"}', json.dumps({"state": "running", "p_term": "1"})],
)
def test_unusable_state_restarts_pid(redis_client: redis.Redis, raw: str) -> None:
    configure(redis_client)
    redis_client.set("rate_controller_state", raw)

    run(redis_client, backlog=0)

    assert saved_state(redis_client)["last_time"] == NOW
    assert saved_state(redis_client)["i_term"] < 1e-12


def test_state_from_a_later_clock_restarts_pid(redis_client: redis.Redis) -> None:
    # Saved on another host or before a reboot: a negative dt would run the
    # integral backwards and flip the derivative.
    configure(redis_client)
    save_state(redis_client, last_time=NOW + 100, i_term=500.0, last_input=0)

    run(redis_client, backlog=10)

    state = saved_state(redis_client)
    assert state["i_term"] < 1e-12
    assert is_negative_zero(state["d_term"])
    assert state["last_time"] == NOW


def test_zero_elapsed_time_uses_tiny_dt(redis_client: redis.Redis) -> None:
    configure(redis_client)
    save_state(redis_client, last_time=NOW, last_input=0)

    run(redis_client, backlog=10)

    state = saved_state(redis_client)
    assert state["d_term"] == pytest.approx(-0.2 * 10 / 1e-16)
    assert state["last_output"] == 0.0
    assert get(redis_client, keyspace.SAMPLE_RATE) == "0.0"


def test_pid_step_limits_integral_to_output_limits() -> None:
    previous = PidState(0.0, 990.0, 0.0, 0.0, 1000.0, MINUTE_AGO)

    state = pid_step(
        previous, 10, setpoint=1000, kp=0, ki=1, kd=0, output_limits=(0.0, 1000.0), now=NOW
    )

    assert state.i_term == 1000.0
    assert state.last_output == 1000.0


def test_negative_backlog_is_rejected(redis_client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="backlog"):
        run(redis_client, backlog=-1)


def test_sample_rate_key_is_the_one_locate_reads() -> None:
    assert keyspace.SAMPLE_RATE == keyspace.SAMPLE_RATE


# --- purging mode -------------------------------------------------------------------------


def test_history_above_max_starts_purging(redis_client: redis.Redis) -> None:
    configure(redis_client, rate_controller_trx_min="10", rate_controller_trx_max="100")
    redis_client.set(keyspace.SAMPLE_RATE, "100")
    save_state(redis_client)
    before = get(redis_client, "rate_controller_state")

    metrics = run(redis_client, history_length=123)

    assert get(redis_client, "rate_controller_trx_purging") == "1"
    assert get(redis_client, keyspace.SAMPLE_RATE) == "0.0"
    assert get(redis_client, "rate_controller_state") == before  # not saved while purging
    assert metrics.gauge_value("rate_control.locate") == 0.0
    assert metrics.gauge_value("trx_history.length") == 123
    assert metrics.gauge_value("trx_history.min") == 10
    assert metrics.gauge_value("trx_history.max") == 100
    assert metrics.gauge_value("trx_history.purging") == 1
    assert metrics.gauge_names() >= PID_GAUGES


def test_purging_continues_above_min(redis_client: redis.Redis) -> None:
    configure(
        redis_client,
        rate_controller_trx_min="10",
        rate_controller_trx_max="200",
        rate_controller_trx_purging="1",
    )

    metrics = run(redis_client, history_length=123)

    assert get(redis_client, "rate_controller_trx_purging") == "1"
    assert get(redis_client, keyspace.SAMPLE_RATE) == "0.0"
    assert metrics.gauge_value("trx_history.purging") == 1
    assert metrics.gauge_value("rate_control.locate") == 0.0


def test_purging_ends_below_min(redis_client: redis.Redis) -> None:
    configure(
        redis_client,
        rate_controller_trx_min="124",
        rate_controller_trx_max="200",
        rate_controller_trx_purging="1",
    )

    metrics = run(redis_client, history_length=123)

    assert get(redis_client, "rate_controller_trx_purging") == "0"
    assert get(redis_client, keyspace.SAMPLE_RATE) == "100.0"
    assert saved_state(redis_client)["last_time"] == NOW
    assert metrics.gauge_value("trx_history.purging") == 0
    assert metrics.gauge_value("trx_history.min") == 124
    assert metrics.gauge_value("rate_control.locate") == 100.0


def test_no_history_length_turns_purging_off(redis_client: redis.Redis) -> None:
    # SQLite or no PROCESS privilege: a stale purging flag must not pin the rate at 0.
    configure(redis_client, rate_controller_trx_purging="1")

    metrics = run(redis_client, history_length=None)

    assert get(redis_client, "rate_controller_trx_purging") == "0"
    assert get(redis_client, keyspace.SAMPLE_RATE) == "100.0"
    assert not ({"trx_history.length"} | TRX_GAUGES) & metrics.gauge_names()


def test_disabled_controller_still_reports_history_length(redis_client: redis.Redis) -> None:
    configure(redis_client, rate_controller_enabled="0")

    metrics = run(redis_client, history_length=5000)

    assert metrics.gauge_value("trx_history.length") == 5000
    assert not (TRX_GAUGES | PID_GAUGES) & metrics.gauge_names()
    assert get(redis_client, "rate_controller_trx_purging") == "0"


# --- the history length from the database -------------------------------------------------


def test_read_history_length_on_real_database(db_engine: sa.Engine, db_url: str) -> None:
    length = read_history_length(db_engine)

    if make_url(db_url).get_backend_name() == "sqlite":
        assert length is None
    else:
        assert isinstance(length, int)
        assert length >= 0


def test_control_sample_rate_reads_history_from_engine(
    redis_client: redis.Redis, db_engine: sa.Engine, db_url: str
) -> None:
    configure(redis_client)
    metrics = RecordingMetrics()

    rate = control_sample_rate(redis_client, db_engine, metrics, backlog=0, now=NOW)

    assert rate == 100.0
    if make_url(db_url).get_backend_name() == "sqlite":
        assert not ({"trx_history.length"} | TRX_GAUGES) & metrics.gauge_names()
    else:
        assert metrics.gauge_value("trx_history.length") >= 0
        assert metrics.gauge_value("trx_history.max") == 1_000_000


def test_control_sample_rate_without_engine(redis_client: redis.Redis) -> None:
    configure(redis_client)
    metrics = RecordingMetrics()
    before = time.monotonic()

    rate = control_sample_rate(redis_client, None, metrics, backlog=600)

    assert read_history_length(None) is None
    assert "trx_history.length" not in metrics.gauge_names()
    # The default clock is time.monotonic(); the saved state records it.
    assert before <= saved_state(redis_client)["last_time"] <= time.monotonic()
    assert rate == metrics.gauge_value("rate_control.locate")


@pytest.fixture
def account_without_process(mysql_server_url: URL, worker_id: str) -> Iterator[str]:
    """The URL of an account that may log in but lacks the PROCESS privilege."""
    name = f"{db_prefix()}_noproc_{worker_id}"
    admin = sa.create_engine(mysql_server_url, poolclass=NullPool)

    def drop() -> None:
        with admin.connect() as connection:
            connection.exec_driver_sql("DROP USER IF EXISTS %s@'%%'", (name,))

    try:
        drop()
        with admin.connect() as connection:
            connection.exec_driver_sql("CREATE USER %s@'%%' IDENTIFIED BY 'pw'", (name,))
        yield mysql_server_url.set(username=name, password="pw").render_as_string(
            hide_password=False
        )
        drop()
    finally:
        admin.dispose()


@pytest.mark.mysql
def test_read_history_length_without_process_privilege_is_none(
    account_without_process: str,
) -> None:
    engine = sa.create_engine(account_without_process, poolclass=NullPool)
    try:
        # The same query as root shows the server would answer 1227 here.
        with pytest.raises(OperationalError) as excinfo, engine.connect() as connection:
            connection.exec_driver_sql(
                "SELECT count FROM information_schema.innodb_metrics"
                " WHERE name = 'trx_rseg_history_len'"
            )
        assert excinfo.value.orig.args[0] == 1227  # type: ignore[union-attr]

        assert read_history_length(engine) is None
    finally:
        engine.dispose()


@pytest.mark.mysql
def test_read_history_length_raises_other_errors(account_without_process: str) -> None:
    engine = sa.create_engine(
        make_url(account_without_process).set(password="wrong"), poolclass=NullPool
    )
    try:
        with pytest.raises(OperationalError) as excinfo:
            read_history_length(engine)
        assert excinfo.value.orig.args[0] == 1045  # type: ignore[union-attr]
    finally:
        engine.dispose()


# --- a disabled controller and the defaults -----------------------------------------------


def test_disabled_controller_leaves_manual_rate(redis_client: redis.Redis) -> None:
    configure(redis_client, rate_controller_enabled="0")
    redis_client.set(keyspace.SAMPLE_RATE, "56.4")
    save_state(redis_client)
    metrics = RecordingMetrics()

    rate = step_rate_controller(redis_client, metrics, backlog=10**6, history_length=None)

    assert rate == 56.4
    assert get(redis_client, keyspace.SAMPLE_RATE) == "56.4"
    assert get(redis_client, "rate_controller_state") == "{}"
    assert metrics.gauge_value("rate_control.locate") == 56.4
    assert metrics.gauge_names() == {"rate_control.locate"}


@pytest.mark.parametrize("raw", ["abc", "nan", "inf"])
def test_invalid_manual_rate_reads_as_full_rate(redis_client: redis.Redis, raw: str) -> None:
    configure(redis_client, rate_controller_enabled="0")
    redis_client.set(keyspace.SAMPLE_RATE, raw)

    metrics = run(redis_client)

    assert metrics.gauge_value("rate_control.locate") == 100.0
    assert get(redis_client, keyspace.SAMPLE_RATE) == raw  # the operator's value, left alone


def test_empty_redis_gets_every_default_and_stays_disabled(redis_client: redis.Redis) -> None:
    metrics = run(redis_client, backlog=5)

    assert {key.decode(): get(redis_client, key.decode()) for key in redis_client.scan_iter()} == {
        "rate_controller_enabled": "0",
        "rate_controller_target": "0",
        "rate_controller_kp": "8",
        "rate_controller_ki": "0",
        "rate_controller_kd": "0",
        "rate_controller_trx_purging": "0",
        "rate_controller_trx_min": "1000",
        "rate_controller_trx_max": "1000000",
        "rate_controller_state": "{}",
    }
    assert metrics.gauge_value("rate_control.locate") == 100.0


# --- step 2: parameter validation ---------------------------------------------------------


@pytest.mark.parametrize("value", [None, "null", "-1", "a string", "1.5"])
def test_invalid_target_disables_controller(redis_client: redis.Redis, value: str | None) -> None:
    configure(redis_client, rate_controller_target=value)
    save_state(redis_client)

    metrics = run(redis_client, backlog=10)

    assert get(redis_client, "rate_controller_enabled") == "0"
    assert get(redis_client, "rate_controller_target") == "0"
    assert get(redis_client, "rate_controller_state") == "{}"
    assert get(redis_client, keyspace.SAMPLE_RATE) is None
    assert metrics.gauge_value("rate_control.locate") == 100.0
    assert not PID_GAUGES & metrics.gauge_names()


def test_target_zero_disables_controller_quirk_fixed(redis_client: redis.Redis) -> None:
    # The original accepted target 0 and then divided the output by it.
    configure(redis_client, rate_controller_target="0")
    redis_client.set(keyspace.SAMPLE_RATE, "56.4")

    rate = run(redis_client, backlog=10).gauge_value("rate_control.locate")

    assert rate == 56.4
    assert get(redis_client, keyspace.SAMPLE_RATE) == "56.4"
    assert get(redis_client, "rate_controller_enabled") == "0"
    assert get(redis_client, "rate_controller_target") == "0"
    assert get(redis_client, "rate_controller_state") == "{}"


@pytest.mark.parametrize("value", [None, "-1", "2", "a string"])
def test_invalid_enabled_flag_disables_controller(
    redis_client: redis.Redis, value: str | None
) -> None:
    configure(redis_client, rate_controller_enabled=value)
    save_state(redis_client)

    metrics = run(redis_client)

    assert get(redis_client, "rate_controller_enabled") == "0"
    assert get(redis_client, "rate_controller_state") == "{}"
    assert not PID_GAUGES & metrics.gauge_names()


@pytest.mark.parametrize(
    ("key", "default"),
    [("rate_controller_kp", 8.0), ("rate_controller_ki", 0.0), ("rate_controller_kd", 0.0)],
)
def test_missing_gain_gets_default_and_controller_runs(
    redis_client: redis.Redis, key: str, default: float
) -> None:
    configure(redis_client, **{key: None})

    metrics = run(redis_client)

    assert get(redis_client, key) == str(int(default))
    assert get(redis_client, "rate_controller_enabled") == "1"
    assert saved_state(redis_client)["state"] == "running"
    gauge = "rate_control.locate." + key.removeprefix("rate_controller_")
    assert metrics.gauge_value(gauge) == default


@pytest.mark.parametrize(
    ("key", "default"),
    [("rate_controller_kp", "8"), ("rate_controller_ki", "0"), ("rate_controller_kd", "0")],
)
@pytest.mark.parametrize("value", ["-1", "a string", "nan", "inf"])
def test_invalid_gain_is_reset_and_disables_controller(
    redis_client: redis.Redis, key: str, default: str, value: str
) -> None:
    configure(redis_client, **{key: value})
    save_state(redis_client)

    metrics = run(redis_client)

    assert get(redis_client, key) == default
    assert get(redis_client, "rate_controller_enabled") == "0"
    assert get(redis_client, "rate_controller_state") == "{}"
    assert metrics.gauge_value("rate_control.locate") == 100.0
    assert not PID_GAUGES & metrics.gauge_names()


@pytest.mark.parametrize(
    ("key", "value", "default"),
    [
        ("rate_controller_trx_purging", "2", "0"),
        ("rate_controller_trx_purging", "yes", "0"),
        ("rate_controller_trx_min", "0", "1000"),
        ("rate_controller_trx_min", "-5", "1000"),
        ("rate_controller_trx_max", "a string", "1000000"),
    ],
)
def test_invalid_trx_parameter_is_reset_and_disables_controller(
    redis_client: redis.Redis, key: str, value: str, default: str
) -> None:
    configure(redis_client, **{key: value})

    run(redis_client, history_length=123)

    assert get(redis_client, key) == default
    assert get(redis_client, "rate_controller_enabled") == "0"
    assert get(redis_client, "rate_controller_state") == "{}"


def test_invalid_trx_min_disables_controller_quirk_fixed(redis_client: redis.Redis) -> None:
    # The original let the valid trx_max overwrite trx_min's validity flag.
    configure(redis_client, rate_controller_trx_min="a string", rate_controller_trx_max="200000")

    metrics = run(redis_client, history_length=123)

    assert get(redis_client, "rate_controller_trx_min") == "1000"
    assert get(redis_client, "rate_controller_trx_max") == "200000"
    assert get(redis_client, "rate_controller_enabled") == "0"
    assert not TRX_GAUGES & metrics.gauge_names()


def test_trx_max_not_above_min_is_reset(redis_client: redis.Redis) -> None:
    configure(redis_client, rate_controller_trx_min="500", rate_controller_trx_max="500")

    run(redis_client, history_length=123)

    assert get(redis_client, "rate_controller_trx_min") == "500"
    assert get(redis_client, "rate_controller_trx_max") == "1000000"
    assert get(redis_client, "rate_controller_enabled") == "0"


@pytest.mark.parametrize(
    ("key", "default"),
    [
        ("rate_controller_trx_purging", "0"),
        ("rate_controller_trx_min", "1000"),
        ("rate_controller_trx_max", "1000000"),
    ],
)
def test_missing_trx_parameter_gets_default_and_controller_runs(
    redis_client: redis.Redis, key: str, default: str
) -> None:
    configure(redis_client, **{key: None})

    run(redis_client, history_length=123)

    assert get(redis_client, key) == default
    assert get(redis_client, "rate_controller_enabled") == "1"
    assert saved_state(redis_client)["state"] == "running"
