"""The geocoder: which region contains a point, and which regions an MCC covers.

Data
----
All of it ships in ``ichnaea/data`` (see its README):

* ``regions.geojson.gz``: one (Multi)Polygon per region, in WGS 84 longitude
  and latitude, with its ISO 3166 alpha-2 code; simplified from Natural Earth
  1:50m admin-0 map subunits. These are the *precise* shapes.
* ``regions_buffer.geojson.gz``: the same regions grown by a buffer of about
  0.5° (some 50 km), so that points just off a coast or a border still find
  their region. These are the *buffered* shapes.
* ``countries.json``: rows of ``[name, alpha2, alpha3, numeric, mcc]`` from
  the ``mobile_codes`` project, where ``mcc`` is null, one code or a list.

The valid regions are those of :class:`ichnaea.regions.RegionTable` (codes in
the precise shapes that GENC also knows, with GENC name and radius); shapes of
any other code are ignored.

Point to region
---------------
An STR-tree indexes the envelopes of the buffered shapes, one entry per
polygon part of a multipolygon, so a small island of a large country does not
make the country's box cover an ocean. A point is resolved in three steps:

1. The tree yields the parts whose envelope contains the point, and a
   prepared point-in-polygon test keeps those whose buffered shape really
   contains it. The candidates are the distinct regions of those parts.
2. No candidate: the point is at sea or in a region we do not know, and the
   answer is None. One candidate: that region, even if the point lies in the
   buffer just outside its precise shape (a boat, a pier, a coarse GPS fix).
3. Several candidates (the point is near a border or between close coasts):
   test the precise shapes of the candidates. If exactly one contains the
   point, that region wins. Otherwise the tie is broken by the distance, in
   degrees of longitude and latitude, from the point to the nearest vertex
   of each candidate's precise shape: if no precise shape contains the point
   the region with the *nearest* vertex wins (the closest coast); if several
   do (overlapping claims) the region whose nearest vertex is *farthest*
   wins (the point lies deepest inside it). Exactly equal distances go to the
   alphabetically first code, so the answer is always deterministic.

``regions()`` runs the same three steps over whole arrays: one tree query and
one vectorised containment test for all points, then the tie rule for the
few points left with several candidates, as grouped sorts rather than a
Python loop per point. ``region()`` is the one-point form of the same steps,
without the array bookkeeping, and gives identical answers (the tests check
both against a slow per-region reference).

MCC to regions
--------------
Each MCC maps to the alpha-2 codes of the ``countries.json`` rows that list
it, with the mobile-code spelling PS mapped to the GENC code XW (West Bank),
intersected with the valid regions and sorted by code. The table is built
once in :meth:`Geocoder.load`, so the request path only does a dict lookup.

A :class:`Geocoder` is built once per process with :meth:`Geocoder.load`
(about half a second, mostly parsing the GeoJSON) and then only read, so it
is safe to share between threads. Importing this module does no work.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from types import MappingProxyType
from typing import Any

import numpy as np
import orjson
import shapely
from numpy.typing import ArrayLike, NDArray

from ichnaea.regions import Region, RegionTable

# mobile_codes spells the West Bank by its ISO code; GENC (and so the region
# table) calls it XW. The other region-table aliases do not apply to MCCs:
# AX (Aland) shares MCC 244 with FI, which is listed anyway, and SJ and UM
# have no MCC of their own.
_MCC_CODE_ALIASES = MappingProxyType({"PS": "XW"})


class Geocoder:
    """Point-in-region and MCC-to-region lookups over fixed region shapes.

    Build it with :meth:`load` from the shipped data. The constructor takes
    already-parsed shapes, so tests can build a geocoder from a few boxes.
    """

    def __init__(
        self,
        regions: RegionTable,
        precise: Mapping[str, shapely.Geometry],
        buffered: Mapping[str, shapely.Geometry],
        mcc_codes: Mapping[int, Sequence[str]],
    ) -> None:
        """Index the shapes of the valid regions.

        ``precise`` and ``buffered`` map alpha-2 codes to (Multi)Polygons in
        longitude/latitude; only codes in ``regions`` with both shapes are
        kept. ``mcc_codes`` maps each MCC to its raw mobile-code alpha-2 codes.
        """
        self._regions = regions
        codes = sorted(code for code in precise if code in regions and code in buffered)
        self._code_ids = MappingProxyType({code: rid for rid, code in enumerate(codes)})
        # Region id -> code; the extra trailing None lets id -1 mean "no region".
        self._codes: NDArray[np.object_] = np.array([*codes, None], dtype=object)

        self._precise = _geometry_array(precise[code] for code in codes)
        self._buffered = _geometry_array(buffered[code] for code in codes)
        # The tie rule measures to vertices, so keep them as one MultiPoint
        # per region for GEOS to scan.
        self._vertices = shapely.extract_unique_points(self._precise)
        parts, part_region = shapely.get_parts(self._buffered, return_index=True)
        self._parts: NDArray[np.object_] = parts
        self._part_region: NDArray[np.intp] = part_region.astype(np.intp)
        # Prepared geometries answer point-in-polygon from an edge index
        # instead of walking every edge; prepare() marks them in place.
        shapely.prepare(self._precise)
        shapely.prepare(self._buffered)
        shapely.prepare(self._parts)
        self._tree = shapely.STRtree(self._parts)

        mcc_regions: dict[int, tuple[Region, ...]] = {}
        for mcc, raw_codes in mcc_codes.items():
            found = {
                region.code: region
                for region in (
                    regions.get(code) for code in _mcc_region_codes(raw_codes, self._code_ids)
                )
                if region is not None
            }
            if found:
                mcc_regions[mcc] = tuple(found[code] for code in sorted(found))
        self._mcc_regions = MappingProxyType(mcc_regions)

    @classmethod
    def load(cls, regions: RegionTable) -> Geocoder:
        """Build the geocoder from the shapes and country table in ``ichnaea/data``."""
        return cls(
            regions,
            precise=_read_shapes("regions.geojson.gz"),
            buffered=_read_shapes("regions_buffer.geojson.gz"),
            mcc_codes=_read_mcc_codes("countries.json"),
        )

    @property
    def codes(self) -> tuple[str, ...]:
        """The codes of the regions with shapes, sorted."""
        return tuple(self._code_ids)

    # -- point to region -------------------------------------------------

    def region(self, lat_deg: float, lon_deg: float) -> str | None:
        """The code of the region containing the point, or None (see the module docs)."""
        if not (math.isfinite(lat_deg) and math.isfinite(lon_deg)):
            return None
        point = shapely.points((lon_deg, lat_deg))
        parts: NDArray[np.intp] = self._tree.query(point)
        if parts.size == 0:
            return None
        inside = shapely.contains_xy(self._parts[parts], lon_deg, lat_deg)
        candidates = sorted(set(self._part_region[parts[inside]].tolist()))
        if not candidates:
            return None
        if len(candidates) == 1:
            return str(self._codes[candidates[0]])
        return str(self._codes[self._break_tie(candidates, point, lat_deg, lon_deg)])

    def regions(self, lat_deg: ArrayLike, lon_deg: ArrayLike) -> list[str | None]:
        """The region code (or None) for each point of two 1-D arrays of degrees.

        Equal to ``[region(lat, lon) for lat, lon in zip(lat_deg, lon_deg)]``
        but computed in bulk. Non-finite coordinates give None.
        """
        lat = np.asarray(lat_deg, dtype=np.float64)
        lon = np.asarray(lon_deg, dtype=np.float64)
        if lat.ndim != 1 or lat.shape != lon.shape:
            raise ValueError(
                f"lat_deg and lon_deg must be 1-D arrays of one length, "
                f"got shapes {lat.shape} and {lon.shape}"
            )
        winner = np.full(lat.size, -1, dtype=np.intp)
        valid = np.flatnonzero(np.isfinite(lat) & np.isfinite(lon))
        if valid.size:
            hits, parts = self._tree.query(shapely.points(lon[valid], lat[valid]))
            point = valid[hits]
            inside = shapely.contains_xy(self._parts[parts], lon[point], lat[point])
            point, region = _unique_pairs(
                point[inside], self._part_region[parts[inside]], len(self._code_ids)
            )
            # Pairs are sorted by point, so a point's count is its run length.
            count = np.bincount(point, minlength=lat.size)[point]
            single = count == 1
            winner[point[single]] = region[single]
            if not single.all():
                tied, tie_winner = self._break_ties(point[~single], region[~single], lat, lon)
                winner[tied] = tie_winner
        result: list[str | None] = self._codes[winner].tolist()
        return result

    def any_region(self, lat_deg: ArrayLike, lon_deg: ArrayLike) -> NDArray[np.bool_]:
        """For each point, whether it lies inside some region's buffered shape.

        Observation reports outside every region (the open ocean, (0, 0)) are
        rejected by the pipeline with this. Non-finite coordinates give False.
        """
        lat = np.atleast_1d(np.asarray(lat_deg, dtype=np.float64))
        lon = np.atleast_1d(np.asarray(lon_deg, dtype=np.float64))
        if lat.ndim != 1 or lat.shape != lon.shape:
            raise ValueError(
                f"lat_deg and lon_deg must be 1-D arrays of one length, "
                f"got shapes {lat.shape} and {lon.shape}"
            )
        found = np.zeros(lat.size, dtype=np.bool_)
        valid = np.flatnonzero(np.isfinite(lat) & np.isfinite(lon))
        if valid.size:
            hits, parts = self._tree.query(shapely.points(lon[valid], lat[valid]))
            point = valid[hits]
            inside = shapely.contains_xy(self._parts[parts], lon[point], lat[point])
            found[point[inside]] = True
        return found

    def in_region(self, lat_deg: float, lon_deg: float, code: str | None) -> bool:
        """Whether the point lies inside the buffered shape of ``code`` (False if unknown)."""
        rid = self._code_ids.get(code) if code is not None else None
        if rid is None or not (math.isfinite(lat_deg) and math.isfinite(lon_deg)):
            return False
        return bool(shapely.contains_xy(self._buffered[rid], lon_deg, lat_deg))

    def in_regions(
        self, lat_deg: ArrayLike, lon_deg: ArrayLike, codes: Sequence[str | None]
    ) -> NDArray[np.bool_]:
        """``in_region`` for each point and code of three sequences, one shape test per code."""
        lat = np.asarray(lat_deg, dtype=np.float64)
        lon = np.asarray(lon_deg, dtype=np.float64)
        if lat.ndim != 1 or lat.shape != lon.shape or len(codes) != lat.size:
            raise ValueError(
                f"lat_deg, lon_deg and codes must be 1-D and of one length, "
                f"got shapes {lat.shape}, {lon.shape} and {len(codes)} codes"
            )
        found = np.zeros(lat.size, dtype=np.bool_)
        finite = np.isfinite(lat) & np.isfinite(lon)
        by_region: dict[int, list[int]] = {}
        for i, code in enumerate(codes):
            rid = self._code_ids.get(code) if code is not None else None
            if rid is not None and finite[i]:
                by_region.setdefault(rid, []).append(i)
        for rid, members in by_region.items():
            index = np.array(members, dtype=np.intp)
            found[index] = shapely.contains_xy(self._buffered[rid], lon[index], lat[index])
        return found

    def region_for_cell(self, lat_deg: float, lon_deg: float, mcc: int) -> str | None:
        """The region of a cell at a point: prefer the regions of its MCC.

        Of the MCC's regions, those whose buffered shape contains the point:
        exactly one is the answer, none gives None, and several fall back to
        :meth:`region`.
        """
        if not (math.isfinite(lat_deg) and math.isfinite(lon_deg)):
            return None
        ids = [self._code_ids[region.code] for region in self._mcc_regions.get(mcc, ())]
        if not ids:
            return None
        inside = shapely.contains_xy(self._buffered[ids], lon_deg, lat_deg)
        matches = [rid for rid, hit in zip(ids, inside, strict=True) if hit]
        if not matches:
            return None
        if len(matches) == 1:
            return str(self._codes[matches[0]])
        return self.region(lat_deg, lon_deg)

    def _break_tie(
        self, candidates: list[int], point: shapely.Geometry, lat_deg: float, lon_deg: float
    ) -> int:
        """The one-point form of :meth:`_break_ties`: the winning region id.

        ``candidates`` are the sorted ids of the regions whose buffered shape
        contains ``point``, at least two.
        """
        ids = np.array(candidates, dtype=np.intp)
        inside = shapely.contains_xy(self._precise[ids], lon_deg, lat_deg)
        n_inside = int(inside.sum())
        if n_inside == 1:
            return int(ids[inside][0])
        eligible = ids if n_inside == 0 else ids[inside]
        distance = shapely.distance(self._vertices[eligible], point)
        # Nearest vertex wins, or with several containing regions the
        # farthest; argmin/argmax take the first, so the lowest id on a tie.
        best = np.argmin(distance) if n_inside == 0 else np.argmax(distance)
        return int(eligible[best])

    def _break_ties(
        self,
        point: NDArray[np.intp],
        region: NDArray[np.intp],
        lat: NDArray[np.float64],
        lon: NDArray[np.float64],
    ) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """Pick one region per point among several buffered candidates.

        ``point`` (sorted, each value at least twice) and ``region`` list the
        candidate pairs; ``point`` indexes ``lat``/``lon``. Returns the
        distinct points and the winning region id of each.
        """
        x = lon[point]
        y = lat[point]
        inside = shapely.contains_xy(self._precise[region], x, y)
        points, group = np.unique(point, return_inverse=True)
        n_inside = np.bincount(group, weights=inside, minlength=points.size)[group]
        # Distances only matter where the precise shapes do not settle it.
        distance = np.zeros(point.size)
        measure = n_inside != 1
        if measure.any():
            distance[measure] = shapely.distance(
                self._vertices[region[measure]], shapely.points(x[measure], y[measure])
            )
        # Eligible: the containing regions, or all candidates if none contains
        # the point. Among them the nearest vertex wins, or with several
        # containing regions the farthest (deepest inside); then the code.
        eligible = (n_inside == 0) | inside
        key = np.where(n_inside >= 2, -distance, distance)
        order = np.lexsort((region, key, ~eligible, group))
        first = order[np.flatnonzero(np.diff(group[order], prepend=-1))]
        return points, region[first]

    # -- codes and MCCs ----------------------------------------------------

    def region_for_code(self, code: str | None) -> Region | None:
        """The region (code, GENC name, radius) for a code, or None if invalid."""
        return self._regions.get(code)

    def region_max_radius_m(self, code: str | None) -> float | None:
        """The radius of a region in metres (its geojson ``radius``), or None."""
        region = self._regions.get(code)
        return None if region is None else region.radius_m

    def regions_for_mcc(self, mcc: int) -> list[Region]:
        """The valid regions using a mobile country code, sorted by code."""
        return list(self._mcc_regions.get(mcc, ()))


def _geometry_array(geometries: Iterable[shapely.Geometry]) -> NDArray[np.object_]:
    return np.fromiter(geometries, dtype=object)


def _unique_pairs(
    point: NDArray[np.intp], region: NDArray[np.intp], n_regions: int
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Distinct (point, region) pairs, sorted by point then region."""
    key = np.unique(point * n_regions + region)
    return key // n_regions, key % n_regions


def _mcc_region_codes(raw_codes: Iterable[str], valid: Mapping[str, int]) -> list[str]:
    codes = (_MCC_CODE_ALIASES.get(code.upper(), code.upper()) for code in raw_codes)
    return [code for code in codes if code in valid]


def _read_data(name: str) -> bytes:
    return resources.files("ichnaea").joinpath("data", name).read_bytes()


def _read_shapes(name: str) -> dict[str, shapely.Geometry]:
    """Parse a gzipped GeoJSON FeatureCollection into ``{alpha2: geometry}``."""
    features: list[dict[str, Any]] = orjson.loads(gzip.decompress(_read_data(name)))["features"]
    codes = [str(feature["properties"]["alpha2"]).upper() for feature in features]
    # orjson writes each geometry back ten times faster than json.dumps (about
    # 35 ms of each file's 120), with the same shortest float texts.
    geometries = shapely.from_geojson([orjson.dumps(feature["geometry"]) for feature in features])
    return dict(zip(codes, geometries, strict=True))


def _read_mcc_codes(name: str) -> dict[int, list[str]]:
    """``{mcc: [alpha2, ...]}`` from the mobile-codes country rows."""
    rows: list[list[Any]] = json.loads(_read_data(name))
    mcc_codes: dict[int, list[str]] = {}
    for _name, alpha2, _alpha3, _numeric, mccs in rows:
        if mccs is None:
            continue
        for mcc in [mccs] if isinstance(mccs, str) else mccs:
            mcc_codes.setdefault(int(mcc), []).append(str(alpha2))
    return mcc_codes
