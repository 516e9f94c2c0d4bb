"""The geocoder on the shipped region data, and the valid-MCC table.

Point lookups are checked on named places, on the three cases of the tie
rule (each with its precondition asserted on the raw shapes, so a data
change fails loudly instead of silently testing something else), and
against a slow reference that tests every region's shapes one by one.
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest
import shapely

from ichnaea.geocode import Geocoder, _read_shapes
from ichnaea.mcc import ALL_VALID_MCCS, is_valid_mcc
from ichnaea.regions import Region, RegionTable

# (precise, buffered) shapes by region code, as read from the data files.
Shapes = tuple[dict[str, shapely.Geometry], dict[str, shapely.Geometry]]


@pytest.fixture(scope="module")
def geocoder() -> Geocoder:
    return Geocoder.load(RegionTable.load())


@pytest.fixture(scope="module")
def shapes() -> Shapes:
    """The raw (precise, buffered) shapes, to assert test preconditions."""
    return _read_shapes("regions.geojson.gz"), _read_shapes("regions_buffer.geojson.gz")


def containing(shapes: dict[str, shapely.Geometry], lat: float, lon: float) -> list[str]:
    return sorted(code for code, shape in shapes.items() if shapely.contains_xy(shape, lon, lat))


@pytest.mark.parametrize(
    ("lat", "lon", "code"),
    [
        (51.5, -0.1, "GB"),  # London
        (52.52, 13.405, "DE"),  # Berlin
        (49.21, -2.13, "JE"),  # St Helier, Jersey
        (49.45, -2.58, "GG"),  # St Peter Port, Guernsey
        (54.15, -4.48, "IM"),  # Douglas, Isle of Man
        (78.22, 15.65, "XR"),  # Longyearbyen, Svalbard
        (31.9, 35.2, "XW"),  # Ramallah, West Bank
        (32.2, 34.95, "IL"),  # near the XW border, inside Israel
        (38.9, -77.04, "US"),  # Washington
        (-33.87, 151.21, "AU"),  # Sydney
    ],
)
def test_region_finds_place(geocoder: Geocoder, lat: float, lon: float, code: str) -> None:
    assert geocoder.region(lat, lon) == code
    assert geocoder.regions([lat], [lon]) == [code]


@pytest.mark.parametrize(("lat", "lon"), [(0.0, 0.0), (-40.0, -30.0), (30.0, -40.0)])
def test_region_in_open_ocean_is_none(geocoder: Geocoder, lat: float, lon: float) -> None:
    assert geocoder.region(lat, lon) is None


def test_region_just_off_the_coast_is_the_buffered_region(
    geocoder: Geocoder, shapes: Shapes
) -> None:
    precise, buffered = shapes
    lat, lon = 39.0, -9.6  # the Atlantic, ~20 km west of Cabo da Roca
    assert containing(precise, lat, lon) == []
    assert containing(buffered, lat, lon) == ["PT"]
    assert geocoder.region(lat, lon) == "PT"


def test_region_one_precise_shape_settles_a_border(geocoder: Geocoder, shapes: Shapes) -> None:
    precise, buffered = shapes
    # Kehl, across the Rhine from Strasbourg: FR's nearest vertex is closer,
    # but only DE's precise shape contains the point.
    lat, lon = 48.58, 7.85
    assert containing(buffered, lat, lon) == ["DE", "FR"]
    assert containing(precise, lat, lon) == ["DE"]
    assert geocoder.region(lat, lon) == "DE"
    assert geocoder.region(48.58, 7.75) == "FR"  # Strasbourg


def test_region_between_coasts_goes_to_the_nearest_vertex(
    geocoder: Geocoder, shapes: Shapes
) -> None:
    precise, buffered = shapes
    lat, lon = 51.0, 1.5  # the Strait of Dover, a little nearer Cap Gris-Nez
    assert containing(buffered, lat, lon) == ["FR", "GB"]
    assert containing(precise, lat, lon) == []
    assert nearest_vertex_deg(precise["FR"], lat, lon) < nearest_vertex_deg(precise["GB"], lat, lon)
    assert geocoder.region(lat, lon) == "FR"


def test_region_in_overlapping_shapes_goes_to_the_deepest(
    geocoder: Geocoder, shapes: Shapes
) -> None:
    precise, buffered = shapes
    # Near the Swedish-Norwegian border the simplified shapes overlap.
    lat, lon = 68.69, 20.244
    assert containing(buffered, lat, lon) == ["NO", "SE"]
    assert containing(precise, lat, lon) == ["NO", "SE"]
    assert nearest_vertex_deg(precise["SE"], lat, lon) > nearest_vertex_deg(precise["NO"], lat, lon)
    assert geocoder.region(lat, lon) == "SE"


@pytest.mark.parametrize(("lat", "lon"), [(float("nan"), 0.0), (51.5, float("inf"))])
def test_region_of_non_finite_point_is_none(geocoder: Geocoder, lat: float, lon: float) -> None:
    assert geocoder.region(lat, lon) is None
    assert geocoder.regions([lat, 51.5], [lon, -0.1]) == [None, "GB"]


def test_regions_of_no_points_is_empty(geocoder: Geocoder) -> None:
    assert geocoder.regions(np.empty(0), np.empty(0)) == []


def test_regions_rejects_mismatched_shapes(geocoder: Geocoder) -> None:
    with pytest.raises(ValueError, match="1-D arrays of one length"):
        geocoder.regions(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="1-D arrays of one length"):
        geocoder.regions(np.zeros((2, 2)), np.zeros((2, 2)))


def random_points(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(-60.0, 80.0, n), rng.uniform(-180.0, 180.0, n)


def test_regions_equals_region_per_point(geocoder: Geocoder) -> None:
    lat, lon = random_points(2_000, seed=20250131)
    result = geocoder.regions(lat, lon)
    assert result == [geocoder.region(a, b) for a, b in zip(lat, lon, strict=True)]
    # The sample must exercise every branch, or it proves little.
    assert None in result
    assert len({code for code in result if code is not None}) > 50


def nearest_vertex_deg(shape: shapely.Geometry, lat: float, lon: float) -> float:
    vertices = shapely.get_coordinates(shape)
    return float(np.hypot(vertices[:, 0] - lon, vertices[:, 1] - lat).min())


def reference_region(
    precise: dict[str, shapely.Geometry],
    buffered: dict[str, shapely.Geometry],
    lat: float,
    lon: float,
) -> str | None:
    """The spec's rule, spelled out over every region: slow and obvious."""
    candidates = containing(buffered, lat, lon)
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    inside = [code for code in candidates if shapely.contains_xy(precise[code], lon, lat)]
    if len(inside) == 1:
        return inside[0]
    if not inside:
        return min(candidates, key=lambda code: (nearest_vertex_deg(precise[code], lat, lon), code))
    return min(inside, key=lambda code: (-nearest_vertex_deg(precise[code], lat, lon), code))


def test_region_and_regions_equal_reference_near_borders(
    geocoder: Geocoder, shapes: Shapes
) -> None:
    precise, buffered = shapes
    # Points around real borders and coasts: jitter the precise vertices.
    rng = np.random.default_rng(7)
    vertices = shapely.get_coordinates(np.array(list(precise.values())))
    picked = vertices[rng.choice(len(vertices), 400, replace=False)]
    lon = picked[:, 0] + rng.normal(0.0, 0.2, len(picked))
    lat = picked[:, 1] + rng.normal(0.0, 0.2, len(picked))
    expected = [reference_region(precise, buffered, a, b) for a, b in zip(lat, lon, strict=True)]
    assert geocoder.regions(lat, lon) == expected
    assert [geocoder.region(a, b) for a, b in zip(lat, lon, strict=True)] == expected
    # Every branch of the tie rule must occur: 0, 1 and 2+ precise shapes.
    branches = set()
    for a, b in zip(lat, lon, strict=True):
        candidates = containing(buffered, a, b)
        if len(candidates) > 1:
            inside = sum(bool(shapely.contains_xy(precise[code], b, a)) for code in candidates)
            branches.add(min(inside, 2))
    assert branches == {0, 1, 2}


def box_geocoder(precise: dict[str, shapely.Geometry]) -> Geocoder:
    """A geocoder over made-up square regions, buffered by 0.5 degrees."""
    table = RegionTable({code: Region(code, f"Region {code}", 1000.0) for code in precise})
    buffered = {code: shapely.buffer(shape, 0.5) for code, shape in precise.items()}
    return Geocoder(table, precise, buffered, {1: ["BB", "AA", "PS"], 2: ["CC"]})


@pytest.mark.parametrize(
    ("lat", "lon", "code"),
    [
        (1.2, 1.2, "AA"),  # in both; AA's nearest vertex (2, 2) is farther than BB's (1, 1)
        (1.8, 1.8, "BB"),  # in both; the other way round
        (1.5, 1.5, "AA"),  # in both, equally deep: the first code
        (-0.2, 1.0, "AA"),  # in AA's buffer only
        (3.2, 2.0, "BB"),  # in BB's buffer only
        (5.0, 5.0, None),
    ],
)
def test_region_tie_rule_on_overlapping_boxes(lat: float, lon: float, code: str | None) -> None:
    geocoder = box_geocoder({"AA": shapely.box(0, 0, 2, 2), "BB": shapely.box(1, 1, 3, 3)})
    assert geocoder.region(lat, lon) == code
    assert geocoder.regions([lat], [lon]) == [code]


def test_region_tie_rule_on_a_shared_edge() -> None:
    geocoder = box_geocoder({"BB": shapely.box(1, 0, 2, 1), "AA": shapely.box(0, 0, 1, 1)})
    # On the shared edge neither precise shape contains the point, and both
    # nearest vertices are 0.5 away: the first code wins.
    assert geocoder.region(0.5, 1.0) == "AA"
    assert geocoder.regions([0.5, 0.5], [1.0, 1.1]) == ["AA", "BB"]


def test_regions_for_mcc_keeps_only_known_regions() -> None:
    geocoder = box_geocoder({"BB": shapely.box(1, 0, 2, 1), "AA": shapely.box(0, 0, 1, 1)})
    assert [region.code for region in geocoder.regions_for_mcc(1)] == ["AA", "BB"]
    assert geocoder.regions_for_mcc(2) == []
    assert geocoder.codes == ("AA", "BB")


def test_region_for_cell_prefers_the_mcc_regions(geocoder: Geocoder) -> None:
    assert geocoder.region_for_cell(51.5, -0.1, 234) == "GB"  # only GB's buffer
    assert geocoder.region_for_cell(49.21, -2.13, 234) == "JE"  # JE and GG: region()
    assert geocoder.region_for_cell(51.5, -0.1, 262) is None  # DE is far away
    assert geocoder.region_for_cell(51.5, -0.1, 999) is None  # no such MCC
    assert geocoder.region_for_cell(float("nan"), -0.1, 234) is None


@pytest.mark.parametrize(
    ("mcc", "codes"),
    [
        (234, ["GB", "GG", "IM", "JE"]),
        (235, ["GB"]),
        (262, ["DE"]),
        (208, ["FR", "MC"]),
        (310, ["BM", "GU", "MP", "PR", "US", "VI"]),
        (311, ["AS", "GU", "US", "VI"]),
        (425, ["IL", "XW"]),  # mobile-codes says PS
        (244, ["FI"]),  # and AX, which GENC does not know
        (999, []),
        (553, ["TV"]),  # a country MCC even though queries may not use it
    ],
)
def test_regions_for_mcc(geocoder: Geocoder, mcc: int, codes: list[str]) -> None:
    assert [region.code for region in geocoder.regions_for_mcc(mcc)] == codes


def test_regions_for_mcc_carries_metadata(geocoder: Geocoder) -> None:
    regions = {region.code: region for region in geocoder.regions_for_mcc(234)}
    assert regions["GB"].name == "United Kingdom"
    assert [regions[code].radius_m for code in ("GB", "IM", "JE", "GG")] == [
        543000.0,
        26000.0,
        10000.0,
        6000.0,
    ]
    # Callers get their own list.
    geocoder.regions_for_mcc(234).clear()
    assert len(geocoder.regions_for_mcc(234)) == 4


def test_region_for_code(geocoder: Geocoder) -> None:
    region = geocoder.region_for_code("de")
    assert region is not None
    assert (region.code, region.name, region.radius_m) == ("DE", "Germany", 463000.0)
    ps = geocoder.region_for_code("PS")
    assert ps is not None
    assert ps.code == "XW"
    assert geocoder.region_for_code("XX") is None
    assert geocoder.region_for_code(None) is None


def test_region_max_radius_m(geocoder: Geocoder) -> None:
    assert geocoder.region_max_radius_m("US") == 2971000.0
    assert geocoder.region_max_radius_m("VA") == 1000.0
    assert geocoder.region_max_radius_m("XX") is None


def test_every_valid_region_has_shapes(geocoder: Geocoder) -> None:
    regions = RegionTable.load()
    assert len(geocoder.codes) == len(regions) == 247
    assert all(code in regions for code in geocoder.codes)


def country_mccs() -> set[int]:
    path = resources.files("ichnaea").joinpath("data", "countries.json")
    mccs: set[int] = set()
    for *_, mcc in json.loads(path.read_text()):
        if mcc is not None:
            mccs.update(int(code) for code in ([mcc] if isinstance(mcc, str) else mcc))
    return mccs


def test_valid_mccs_are_the_country_mccs_minus_553() -> None:
    assert len(ALL_VALID_MCCS) == 234
    assert country_mccs() - {553} == ALL_VALID_MCCS


@pytest.mark.parametrize(
    ("mcc", "valid"),
    [(234, True), (310, True), (995, True), (553, False), (999, False), (1, False), (0, False)],
)
def test_is_valid_mcc(mcc: int, valid: bool) -> None:
    assert is_valid_mcc(mcc) is valid


def test_any_region_accepts_land_and_rejects_the_open_ocean(geocoder: Geocoder) -> None:
    found = geocoder.any_region([51.5, 0.0, 30.0, float("nan")], [-0.1, 0.0, -40.0, 1.0])
    assert found.tolist() == [True, False, False, False]


def test_any_region_agrees_with_the_buffered_shapes(geocoder: Geocoder, shapes: Shapes) -> None:
    rng = np.random.default_rng(7)
    lat = rng.uniform(-60, 70, 300)
    lon = rng.uniform(-180, 180, 300)
    expected = [bool(containing(shapes[1], a, b)) for a, b in zip(lat, lon, strict=True)]
    assert geocoder.any_region(lat, lon).tolist() == expected


def test_in_region_uses_the_buffered_shape_of_that_code(geocoder: Geocoder) -> None:
    assert geocoder.in_region(46.2884, 6.82, "FR")
    assert not geocoder.in_region(46.2884, 7.45, "FR")
    assert geocoder.in_region(46.2884, 7.45, "CH")
    assert not geocoder.in_region(51.5, -0.1, "ZZ")
    assert not geocoder.in_region(51.5, -0.1, None)


def test_in_regions_is_in_region_for_each_point(geocoder: Geocoder) -> None:
    rng = np.random.default_rng(11)
    lat = np.append(rng.uniform(35, 60, 400), [float("nan"), 46.2884])
    lon = np.append(rng.uniform(-10, 25, 400), [6.82, 7.45])
    codes = [None, "ZZ", *rng.choice(["FR", "CH", "DE", "GB", "IT"], 398).tolist(), "FR", "FR"]
    expected = [geocoder.in_region(a, b, c) for a, b, c in zip(lat, lon, codes, strict=True)]
    assert 20 < sum(expected) < len(expected) - 20  # the sample holds both answers
    assert geocoder.in_regions(lat, lon, codes).tolist() == expected
    with pytest.raises(ValueError, match="one length"):
        geocoder.in_regions(lat, lon, codes[:-1])
