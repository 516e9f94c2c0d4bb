"""The statistics page's sorting (ichnaea.web.site.stats); the page in tests/web/test_site.py."""

from __future__ import annotations

from ichnaea.web.site import stats


def test_region_sort_defaults_and_parsing() -> None:
    assert stats.parse_sort({}) == ("name", False)
    assert stats.parse_sort({"sort": "lte"}) == ("lte", True)
    assert stats.parse_sort({"sort": "lte", "order": "asc"}) == ("lte", False)
    assert stats.parse_sort({"sort": "nope", "order": "sideways"}) == ("name", False)
