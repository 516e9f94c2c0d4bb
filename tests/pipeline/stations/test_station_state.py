"""Station states, blocking and the transition table (spec pipeline.md 9.2-9.5)."""

from __future__ import annotations

import pytest

from ichnaea.pipeline.stations.state import TRANSITIONS, StationState, is_blocked
from tests.pipeline.stations.test_station_plan import GROUPS, SPEC_TABLE, TODAY, days_ago, time_ago


def test_transition_constant_is_the_spec_table() -> None:
    for state, actions in SPEC_TABLE.items():
        for (source, consistent), action in zip(GROUPS, actions, strict=True):
            got = TRANSITIONS[StationState(state), source, consistent]
            assert (got.value if got else None) == action


# ---------------------------------------------------------------------------
# 9.2: blocked stations
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("created_days", "block_count", "block_last_days", "blocked"),
    [
        (None, None, None, False),  # never blocked
        (14, 1, None, True),  # round(0.47) = 0
        (30, 1, None, True),  # round(1.0) = 1
        (45, 1, None, False),  # round(1.5) = 2 (half to even)
        (45, 2, None, True),
        (105, 3, None, False),  # round(3.5) = 4
        (None, None, 0, True),  # blocked today
        (None, None, 1, True),  # blocked yesterday
        (None, None, 2, False),
        (None, None, 14, False),
    ],
)
def test_station_blocked_today(
    created_days: int | None, block_count: int | None, block_last_days: int | None, blocked: bool
) -> None:
    row = {
        "created": None if created_days is None else time_ago(created_days),
        "block_count": block_count,
        "block_last": None if block_last_days is None else days_ago(block_last_days),
    }
    assert is_blocked(row, TODAY) is blocked


def test_station_blocked_14_days_ago_was_blocked_on_that_day() -> None:
    row = {"created": None, "block_count": None, "block_last": days_ago(14)}
    assert not is_blocked(row, TODAY)
    assert is_blocked(row, days_ago(14))


def test_missing_station_is_not_blocked() -> None:
    assert not is_blocked(None, TODAY)


def test_block_count_zero_does_not_block_a_new_station() -> None:
    assert not is_blocked({"created": time_ago(3), "block_count": 0}, TODAY)


@pytest.mark.parametrize(
    ("days", "count", "blocked"), [(45, 1, False), (75, 2, True), (105, 3, False), (135, 4, True)]
)
def test_block_age_rule_keeps_bankers_rounding_quirk_18_kept(
    days: int, count: int, blocked: bool
) -> None:
    # round(1.5) = 2, round(2.5) = 2, round(3.5) = 4, round(4.5) = 4.
    assert is_blocked({"created": time_ago(days), "block_count": count}, TODAY) is blocked
