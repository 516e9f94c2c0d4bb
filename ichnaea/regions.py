"""Region metadata: ISO/GENC code → (name, radius in metres).

The codes and radii come from ``data/regions.geojson.gz`` (one feature per
region, ``radius`` rounded to the km), the names from the GENC dataset (PyPI
``genc``). Only regions known to both are valid, as in the original service,
so region codes, names and radii match it exactly.

Point-in-region lookups (the geocoder) build on this table in a later module;
this one only answers "what is region XX".
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any

import genc

# GeoIP and mobile-code data use some codes GENC spells differently.
CODE_ALIASES = MappingProxyType({"AX": "FI", "PS": "XW", "SJ": "XR", "UM": "US"})


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    name: str
    radius_m: float


class RegionTable:
    """Immutable lookup of the valid regions. Build once per process with ``load()``."""

    def __init__(self, regions: dict[str, Region]) -> None:
        self._regions = MappingProxyType(dict(regions))

    @classmethod
    def load(cls) -> RegionTable:
        features = _read_geojson("regions.geojson.gz")["features"]
        regions: dict[str, Region] = {}
        for feature in features:
            props = feature["properties"]
            code = str(props["alpha2"]).upper()
            entry = genc.region_by_alpha2(code)
            if entry is None:
                continue
            regions[code] = Region(code, entry.name, float(props["radius"]))
        return cls(regions)

    def __len__(self) -> int:
        return len(self._regions)

    def __contains__(self, code: object) -> bool:
        return code in self._regions

    def get(self, code: str | None) -> Region | None:
        """The region for a code (aliases applied, case-insensitive), or None."""
        if not code:
            return None
        code = code.upper()
        return self._regions.get(CODE_ALIASES.get(code, code))


def _read_geojson(name: str) -> Any:
    with resources.files("ichnaea").joinpath("data", name).open("rb") as raw:
        return json.loads(gzip.decompress(raw.read()))
