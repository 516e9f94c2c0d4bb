"""The accuracy harness (``benchmarks/accuracy``): its world is reproducible, its scoring right.

No service is started here; ``benchmarks/accuracy/run.py`` does that.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.accuracy.calibrate import fit_band
from benchmarks.accuracy.scans import build_plan
from benchmarks.accuracy.score import Outcome, by_kind, haversine_m, outcome, summarise
from benchmarks.accuracy.world import generate_world

pytestmark = pytest.mark.slow


def test_world_same_seed_gives_same_world_and_plan() -> None:
    first, second = generate_world("centre", 5, scale=0.1), generate_world("centre", 5, scale=0.1)
    for kind, stations in first.stations.items():
        assert stations.ids == second.stations[kind].ids
        np.testing.assert_array_equal(stations.pos2_m, second.stations[kind].pos2_m)
    plan1, plan2 = build_plan(first), build_plan(second)
    assert plan1.phase1 == plan2.phase1
    assert plan1.phase2 == plan2.phase2
    assert [q.body for q in plan1.queries] == [q.body for q in plan2.queries]
    other = generate_world("centre", 6, scale=0.1)
    assert other.stations["wifi"].ids != first.stations["wifi"].ids


def test_world_moves_groups_a_few_km_and_queries_are_never_submitted() -> None:
    world = generate_world("suburb", 1, scale=0.2, moved_share=0.05)
    wifi = world.stations["wifi"]
    assert wifi.moved.any()
    shift_km = np.hypot(*(wifi.pos2_m - wifi.pos1_m)[wifi.moved].T) / 1000
    assert ((shift_km >= 2) & (shift_km <= 8)).all()
    assert (wifi.pos1_m[~wifi.moved] == wifi.pos2_m[~wifi.moved]).all()
    plan = build_plan(world)
    submitted = {
        (r["position"]["latitude"], r["position"]["longitude"])
        for _, r in plan.phase1 + plan.phase2
    }
    assert plan.queries
    assert all("position" not in q.body for q in plan.queries)
    assert not submitted & {q.truth_deg for q in plan.queries}
    assert {q.kind for q in plan.queries} >= {"wifi", "cell", "mixed", "moved"}
    for query in plan.queries:
        assert query.body["considerIp"] is False
        assert query.body["fallbacks"]["ipf"] is False


def test_outcome_exact_answer_with_radius_10_is_inside() -> None:
    result = outcome("wifi", (52.5, 13.4), {"location": {"lat": 52.5, "lng": 13.4}, "accuracy": 10})
    assert result.found and result.error_m == 0 and result.accuracy_m == 10
    assert summarise([result])["inside"] == 1.0


def test_outcome_error_body_is_not_found() -> None:
    result = outcome("blue", (52.5, 13.4), {"error": {"code": 404, "message": "Not found"}})
    assert not result.found
    assert summarise([result]) == {
        "n": 1, "found": 0.0, "median_m": None, "p90_m": None,
        "inside": None, "far_1km": None, "lacf": None,
    }  # fmt: skip


def test_summarise_median_p90_inside_and_far_of_known_values() -> None:
    outcomes = [Outcome("cell", True, error, 25.0) for error in (10.0, 20.0, 30.0, 40.0, 1500.0)]
    outcomes.append(Outcome("cell", False))
    figures = by_kind(outcomes, ["wifi", "cell"])
    assert list(figures) == ["cell"]
    cell = figures["cell"]
    assert cell["n"] == 6
    assert cell["found"] == round(5 / 6, 4)
    assert cell["median_m"] == 30.0
    assert cell["p90_m"] == pytest.approx(40 + 0.6 * 1460)
    assert cell["inside"] == 0.4
    assert cell["far_1km"] == 0.2


def test_haversine_one_degree_of_latitude() -> None:
    assert haversine_m(52.0, 13.0, 53.0, 13.0) == pytest.approx(math.radians(1) * 6_371_008.8)


def test_area_queries_name_cells_no_station_has() -> None:
    world = generate_world("suburb", 3, scale=0.2)
    plan = build_plan(world)
    known = {tuple(map(int, ident.split(":"))) for s in ("lte", "gsm")
             for ident in world.stations[s].ids}  # fmt: skip
    areas = [q for q in plan.queries if q.kind == "area"]
    assert areas
    for query in areas:
        for cell in query.body["cellTowers"]:
            ident = (cell["mobileCountryCode"], cell["mobileNetworkCode"],
                     cell["locationAreaCode"], cell["cellId"])  # fmt: skip
            assert ident not in known
            assert any(ident[:3] == k[:3] for k in known)  # its area is known


def test_calibration_fit_recovers_a_known_quantile_line() -> None:
    # error = 20 + 0.5 * spread * u, u uniform on [0, 2]: the tau quantile of
    # the error at a spread is 20 + spread * tau (for the affine fit).
    rng = np.random.default_rng(1)
    spread = rng.uniform(10, 200, 20_000)
    error = 20 + 0.5 * spread * rng.uniform(0, 2, spread.size)
    for tau in (0.68, 0.95):
        intercept, slope = fit_band(spread, error, tau)
        assert slope == pytest.approx(tau, abs=0.03)
        assert intercept == pytest.approx(20, abs=4)
        inside = np.mean(error <= intercept + slope * spread)
        assert inside == pytest.approx(tau, abs=0.01)
    # Under a higher confidence's line (the 95 % one bounds the 68 % fit) over
    # the spreads given: at both ends, and so in between.
    above = (15.0, 0.6)
    intercept, slope = fit_band(spread, error, 0.68, [above], (10.0, 200.0))
    for s in (10.0, 105.0, 200.0):
        assert intercept + slope * s <= above[0] + above[1] * s + 1e-9
    assert fit_band(spread, error, 0.68)[0] > above[0]  # the bound binds
