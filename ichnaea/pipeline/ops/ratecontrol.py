"""Locate sample-rate control: keep the station backlog near a target.

Locate queries that found a position are fed back into the pipeline as
reports (spec pipeline.md section 2). ``global_locate_sample_rate`` (0-100,
percent) says how many of them are kept. When the station updaters fall
behind, a PID controller lowers that rate so the backlog of the station
queues (bluetooth, wifi and cell shards) settles at an operator-chosen
target; when they catch up it raises the rate back to 100.

:func:`control_sample_rate` is one step, run by the worker's periodic
monitor job once a minute (spec section 17):

1. Read the controller's Redis parameters in one ``MGET``. Every parameter
   is validated: a missing one gets its default written to Redis; an invalid
   one (unparseable, out of range) is reset to its default and disables the
   controller (``rate_controller_enabled = 0``, ``rate_controller_state =
   "{}"``), with a warning in the log. A disabled controller leaves the
   sample rate alone, so an operator can set it by hand.
2. One PID step (simple-pid 1.0.1 semantics, reimplemented in
   :func:`pid_step`) with the backlog as input, the target as setpoint and
   the output limited to ``[0, target]``. The PID's internals survive
   between runs, which may happen in different worker processes, as the
   JSON ``rate_controller_state``.
3. The sample rate is ``100 * output / target``: 100 while the output is
   at its upper limit (backlog well below the target), 0 at its lower limit
   (backlog above the target for long enough), and in between otherwise.
4. InnoDB purge guard: a long transaction history (undo log not yet purged,
   ``trx_rseg_history_len``) slows every query. Above ``trx_max`` the
   controller enters purging mode and sets the rate to 0 until the length
   falls below ``trx_min``. Only MySQL/MariaDB has this length; on SQLite
   (or without an engine) purging mode is off.

Decisions where the original (spec section 17, step 2) had quirks:

* ``trx_min`` and ``trx_max`` must both be valid (the original kept only the
  validity of ``trx_max``), and ``trx_max`` must be greater than ``trx_min``.
* A target of 0 disables the controller like an invalid target: the
  original accepted it and then divided by zero. 0 is also what a missing
  target is set to, so "no target yet" and "target 0" behave the same:
  the operator must set a positive target before the controller runs. The
  rate is left as it was (not forced to 100), like any disabled run.

Choices the spec leaves open:

* A saved ``last_time`` later than ``now`` (the state was written against
  another clock: another host, or before a reboot) makes the elapsed time
  unknown; the PID restarts from scratch instead of stepping with a
  negative ``dt``, which would run the integral backwards.
* Without a history length, purging mode is off and the flag is written as
  0: a stale flag must not hold the rate at 0 with nothing to end it.
* Gains and the manual rate must be finite (``nan``/``inf`` are invalid).
  An invalid manual rate reads as 100 (as the locate service reads it) and
  is left in Redis for the operator to fix.
* Defaults for missing keys are written with ``SET NX``, so a value an
  operator sets during the run is not overwritten.
* ``trx_history.length`` is sent whenever a length was read;
  ``trx_history.min/max/purging`` only when the controller ran.

:func:`step_rate_controller` is the same step with the history length
passed in, for callers (and tests) that have read it already.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import TypeVar

import redis
from sqlalchemy.engine import Engine

from ichnaea.broker import keyspace
from ichnaea.broker.client import mget
from ichnaea.metrics import Metrics
from ichnaea.repositories.monitoring import read_history_length

log = logging.getLogger(__name__)

T = TypeVar("T")

# Read by the locate service (ichnaea.api.locate.service.GLOBAL_SAMPLE_RATE_KEY).
_KEYS = (
    keyspace.SAMPLE_RATE,
    keyspace.RATE_CONTROLLER_ENABLED,
    keyspace.RATE_CONTROLLER_TARGET,
    keyspace.RATE_CONTROLLER_KP,
    keyspace.RATE_CONTROLLER_KI,
    keyspace.RATE_CONTROLLER_KD,
    keyspace.RATE_CONTROLLER_STATE,
    keyspace.RATE_CONTROLLER_TRX_PURGING,
    keyspace.RATE_CONTROLLER_TRX_MIN,
    keyspace.RATE_CONTROLLER_TRX_MAX,
)

DEFAULT_SAMPLE_RATE = 100.0
DEFAULT_TARGET = 0  # no target: the controller stays disabled
# Gains are floats, but their defaults are written to Redis as "8" and "0".
DEFAULT_KP: float = 8
DEFAULT_KI: float = 0
DEFAULT_KD: float = 0
DEFAULT_TRX_MIN = 1000
DEFAULT_TRX_MAX = 1_000_000

# simple-pid replaces an elapsed time of zero by this, to avoid dividing by it.
ZERO_DT_S = 1e-16


@dataclass(frozen=True, slots=True)
class PidState:
    """A PID controller's internals after a step: ``rate_controller_state``."""

    p_term: float
    i_term: float
    d_term: float
    last_input: float
    last_output: float
    last_time: float  # monotonic seconds

    def to_json(self) -> str:
        return json.dumps({"state": "running", **asdict(self)})

    @classmethod
    def from_json(cls, raw: bytes | str | None) -> PidState | None:
        """The saved state, or None when absent, incomplete or not numeric."""
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except ValueError:  # also UnicodeDecodeError
            return None
        if not isinstance(data, dict) or data.get("state") != "running":
            return None
        values: list[float] = []
        for field in fields(cls):
            value = data.get(field.name)
            # bool is an int subclass, but true/false is not a saved number.
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            if not math.isfinite(value):
                return None
            values.append(float(value))
        return cls(*values)


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def pid_step(
    previous: PidState | None,
    input_value: float,
    *,
    setpoint: float,
    kp: float,
    ki: float,
    kd: float,
    output_limits: tuple[float, float],
    now: float,
) -> PidState:
    """One step of a simple-pid 1.0.1 ``PID`` (no sample time, derivative on input).

    ``previous`` is the state after the last step, or None for a new
    controller, which behaves as if created at ``now``: no elapsed time, no
    previous input (so no derivative) and a zero integral.
    """
    low, high = output_limits
    if previous is not None and previous.last_time > now:
        log.warning("rate controller state is from another clock: restarting the PID")
        previous = None
    last_time = now if previous is None else previous.last_time
    dt = (now - last_time) or ZERO_DT_S
    error = setpoint - input_value
    d_input = 0.0 if previous is None else input_value - previous.last_input
    p_term = kp * error
    i_term = _clamp((0.0 if previous is None else previous.i_term) + ki * error * dt, low, high)
    d_term = -kd * d_input / dt
    output = _clamp(p_term + i_term + d_term, low, high)
    return PidState(p_term, i_term, d_term, input_value, output, now)


def control_sample_rate(
    client: redis.Redis,
    engine: Engine | None,
    metrics: Metrics,
    *,
    backlog: int,
    now: float | None = None,
) -> float:
    """Run the rate controller once and return the current sample rate (0-100).

    ``backlog`` is the number of items in the station queues (bluetooth,
    wifi and cell shards); ``now`` is monotonic seconds (default
    :func:`time.monotonic`). Reads the InnoDB history length from
    ``engine`` (see :func:`read_history_length`), then
    :func:`step_rate_controller`.
    """
    return step_rate_controller(
        client, metrics, backlog=backlog, history_length=read_history_length(engine), now=now
    )


def step_rate_controller(
    client: redis.Redis,
    metrics: Metrics,
    *,
    backlog: int,
    history_length: int | None,
    now: float | None = None,
) -> float:
    """:func:`control_sample_rate` with the history length already read.

    ``history_length`` None means there is none (SQLite, no privilege):
    purging mode is off and the ``trx_history.*`` gauges are not sent.
    """
    if backlog < 0:
        raise ValueError(f"backlog must be >= 0, got {backlog}")
    now = time.monotonic() if now is None else now
    raw: dict[str, bytes | str | None] = dict(zip(_KEYS, mget(client, _KEYS), strict=True))
    params = _Params(raw)

    rate = params.read(keyspace.SAMPLE_RATE, _finite, DEFAULT_SAMPLE_RATE, write=False)
    enabled = params.read(keyspace.RATE_CONTROLLER_ENABLED, _flag, 0)
    target = params.read(keyspace.RATE_CONTROLLER_TARGET, _non_negative_int, DEFAULT_TARGET)
    kp = params.read(keyspace.RATE_CONTROLLER_KP, _gain, DEFAULT_KP)
    ki = params.read(keyspace.RATE_CONTROLLER_KI, _gain, DEFAULT_KI)
    kd = params.read(keyspace.RATE_CONTROLLER_KD, _gain, DEFAULT_KD)
    purging = params.read(keyspace.RATE_CONTROLLER_TRX_PURGING, _flag, 0) == 1
    trx_min = params.read(keyspace.RATE_CONTROLLER_TRX_MIN, _positive_int, DEFAULT_TRX_MIN)
    trx_max = params.read(keyspace.RATE_CONTROLLER_TRX_MAX, _positive_int, DEFAULT_TRX_MAX)
    if trx_max <= trx_min:
        params.invalid(
            keyspace.RATE_CONTROLLER_TRX_MAX,
            trx_max,
            DEFAULT_TRX_MAX,
            reason=f"not above {trx_min}",
        )
        trx_max = DEFAULT_TRX_MAX
    if enabled and params.valid and target == 0:
        # The original accepted 0 and divided by it (spec section 17, step 2).
        log.warning("%s is 0: rate controller disabled", keyspace.RATE_CONTROLLER_TARGET)
        params.valid = False

    writes = dict(params.resets)  # never empty below: the state or the rate is written
    if history_length is not None:
        metrics.gauge("trx_history.length", history_length)
    if not (enabled and params.valid):
        if enabled:
            writes[keyspace.RATE_CONTROLLER_ENABLED] = "0"
        writes[keyspace.RATE_CONTROLLER_STATE] = "{}"
    else:
        state = pid_step(
            PidState.from_json(raw[keyspace.RATE_CONTROLLER_STATE]),
            backlog,
            setpoint=target,
            kp=kp,
            ki=ki,
            kd=kd,
            output_limits=(0.0, target),
            now=now,
        )
        if history_length is None:
            purging = False
        else:
            if history_length > trx_max:
                purging = True
            if purging and history_length < trx_min:
                purging = False
        if purging:
            # The saved state keeps the last step before purging began.
            rate = 0.0
        else:
            rate = 100.0 * _clamp(state.last_output / target, 0.0, 1.0)
            writes[keyspace.RATE_CONTROLLER_STATE] = state.to_json()
        writes[keyspace.SAMPLE_RATE] = str(rate)
        writes[keyspace.RATE_CONTROLLER_TRX_PURGING] = str(int(purging))
        if history_length is not None:
            metrics.gauge("trx_history.min", trx_min)
            metrics.gauge("trx_history.max", trx_max)
            metrics.gauge("trx_history.purging", int(purging))
        for name, value in (
            ("target", target),
            ("kp", kp),
            ("ki", ki),
            ("kd", kd),
            ("pterm", state.p_term),
            ("iterm", state.i_term),
            ("dterm", state.d_term),
        ):
            metrics.gauge(f"rate_control.locate.{name}", value)
    # No transaction: the keys lie in several hash slots on a Redis Cluster,
    # and each write stands on its own.
    with client.pipeline(transaction=False) as pipe:
        # NX: an operator may have set the key since the MGET.
        for key, text in params.defaults.items():
            pipe.set(key, text, nx=True)
        for key, written in writes.items():
            pipe.set(key, written)
        pipe.execute()
    metrics.gauge("rate_control.locate", rate)
    return rate


class _Params:
    """Validates the raw Redis values and collects what to write back."""

    def __init__(self, raw: Mapping[str, bytes | str | None]) -> None:
        self.raw = raw
        self.defaults: dict[str, str] = {}  # missing keys: their defaults
        self.resets: dict[str, str] = {}  # invalid keys: their defaults
        self.valid = True

    def read(
        self, key: str, parse: Callable[[str], T | None], default: T, *, write: bool = True
    ) -> T:
        """The parsed value of ``key``; its default when missing or invalid.

        A missing key gets the default written; an invalid one is reset to it
        and marks the parameters invalid. ``write=False`` (the sample rate)
        only falls back to the default.
        """
        raw = self.raw[key]
        if raw is not None:
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            value = parse(text)
            if value is not None:
                return value
            if not write:
                return default
            self.invalid(key, text, default)
        elif write:
            self.defaults[key] = str(default)
        return default

    def invalid(self, key: str, value: object, default: object, *, reason: str = "") -> None:
        log.warning(
            "invalid %s %r%s: reset to %s, rate controller disabled",
            key,
            value,
            f" ({reason})" if reason else "",
            default,
        )
        self.resets[key] = str(default)
        self.valid = False


def _text_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _finite(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _flag(text: str) -> int | None:
    value = _text_int(text)
    return value if value in (0, 1) else None


def _non_negative_int(text: str) -> int | None:
    value = _text_int(text)
    return value if value is not None and value >= 0 else None


def _positive_int(text: str) -> int | None:
    value = _text_int(text)
    return value if value is not None and value > 0 else None


def _gain(text: str) -> float | None:
    value = _finite(text)
    return value if value is not None and value >= 0 else None
