"""The compiled core of ichnaea: the only import surface of its kernels.

Contract:

* Inputs are validated and coerced at the Python boundary, in
  ``ichnaea/geo.py`` and ``ichnaea/positioning.py``, never here. The
  kernels take one-dimensional, C-contiguous float64 arrays of equal length
  (read-only arrays are fine), write array results into caller-allocated
  ``out`` arrays and return scalar results. They check only that the lengths agree, which keeps a
  mistake from reading or writing out of bounds; any other misuse (wrong
  dtype, non-contiguous arrays) raises the usual Cython ``ValueError``.
* Some kernels take Python objects instead: ``wifi_lookups`` and
  ``cell_lookups`` read the decoded JSON of a locate query's Wi-Fi and cell
  entries, ``mac_search_input`` and ``cell_search_input`` the lookups an
  index search takes, and hand back to the Python path (return None)
  whatever is not plain (see ``_query.pyx``); ``mysql_values`` formats station rows as SQL
  literals and raises TypeError for a value that is not plain
  (``_sqltext.pyx``); ``_reports.pyx`` flattens, validates and
  de-duplicates a queued report's entries and normalises a submitted
  report's Wi-Fi and Bluetooth entries, and hands back (None) what is not
  plain; ``_rows.pyx`` turns the station planner's objects
  (observation dicts, stored rows, keys) into arrays; ``best_position_index``
  reads the locate results' numbers and hands back (None) what is not a
  float or is NaN (``_answer.pyx``).
* Kernels never raise for numeric reasons: NaN propagates, and a Vincenty
  iteration that does not converge is reported through the documented
  fallback or NaN.
* There is no pure-Python fallback. If the extension is not built, importing
  this package fails with an ``ImportError`` that says how to build it.
  ``ichnaea._fast.reference`` holds the pure-NumPy specification used by the
  tests and benchmarks; it is not a runtime substitute.

This package imports nothing from the rest of ichnaea.
"""

try:
    from ichnaea._fast._answer import best_position_index, round7
    from ichnaea._fast._clustering import cluster_complete_linkage, order_groups
    from ichnaea._fast._geodesy import (
        bbox_array,
        circle_radius_m_array,
        destination_array,
        distance_m_array,
        distance_m_scalar,
        geodesy_constants,
        haversine_m_array,
        haversine_rdist_array,
        m_to_rdist_array,
        max_distance_m_array,
    )
    from ichnaea._fast._index import block_rule, gather_stations, locate_cells, locate_macs
    from ichnaea._fast._query import (
        cell_limits,
        cell_lookups,
        cell_search_input,
        mac_search_input,
        wifi_limits,
        wifi_lookups,
    )
    from ichnaea._fast._reports import (
        add_observations,
        flat_entries,
        position_fields,
        submitted_cells,
        submitted_macs,
        transform_limits,
    )
    from ichnaea._fast._rows import (
        dates_from_text,
        day_numbers,
        first_seen,
        float_fields,
        ints_to_floats,
        mac_bytes,
        object_table,
        positions,
    )
    from ichnaea._fast._sqltext import mysql_values
    from ichnaea._fast._station import (
        KIND_BLUE,
        KIND_CELL,
        KIND_WIFI,
        aggregate_groups,
        max_distance_to_points,
        observation_weights,
    )
    from ichnaea._fast._weighting import (
        aggregate_cell_groups,
        aggregate_cluster,
        cell_weights,
        cluster_weights,
        percentile95_distance_m,
        select_sample,
        weighted_position,
    )
except ImportError as exc:
    raise ImportError(
        f"ichnaea's compiled core ({exc.name or 'ichnaea._fast'}) is not built or cannot be "
        f"loaded ({exc}). Build it from the project root with `pip install -e .` or "
        "`python setup.py build_ext --inplace`; `make run` and `make test` build it "
        "for you."
    ) from exc

__all__ = [
    "KIND_BLUE",
    "KIND_CELL",
    "KIND_WIFI",
    "add_observations",
    "aggregate_cell_groups",
    "aggregate_cluster",
    "aggregate_groups",
    "bbox_array",
    "best_position_index",
    "block_rule",
    "cell_limits",
    "cell_lookups",
    "cell_search_input",
    "cell_weights",
    "circle_radius_m_array",
    "cluster_complete_linkage",
    "cluster_weights",
    "dates_from_text",
    "day_numbers",
    "destination_array",
    "distance_m_array",
    "distance_m_scalar",
    "first_seen",
    "flat_entries",
    "float_fields",
    "gather_stations",
    "geodesy_constants",
    "haversine_m_array",
    "haversine_rdist_array",
    "ints_to_floats",
    "locate_cells",
    "locate_macs",
    "m_to_rdist_array",
    "mac_bytes",
    "mac_search_input",
    "max_distance_m_array",
    "max_distance_to_points",
    "mysql_values",
    "object_table",
    "observation_weights",
    "order_groups",
    "percentile95_distance_m",
    "position_fields",
    "positions",
    "round7",
    "select_sample",
    "submitted_cells",
    "submitted_macs",
    "transform_limits",
    "weighted_position",
    "wifi_limits",
    "wifi_lookups",
]
