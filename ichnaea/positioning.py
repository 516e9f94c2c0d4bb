"""Public positioning API: clusters of networks and the position of each.

This module is the Python boundary in front of the clustering and weighting
kernels in ``ichnaea._fast`` (spec/locate.md 4.5-4.7). It checks that the
inputs are one-dimensional real arrays of equal length, converts them to
contiguous float64 (arrays that already are pass through without a copy,
read-only ones included) and lets one kernel call do the work, so that a
scan of a few dozen networks costs microseconds.

* ``cluster_networks`` groups the Wi-Fi or Bluetooth networks found for one
  query: complete-linkage clusters of diameter at most ``max_distance_m``
  (500 m for Wi-Fi, 100 m for Bluetooth), keeping only groups of two or
  more. Fewer than two networks never form a cluster, so a caller cannot
  learn where one real network is by pairing it with a made-up one.
* ``aggregate_cluster_position`` turns one cluster into a position: the
  weighted mean of its heaviest networks, weighted by signal and station
  radius (issue 11; the old service weighted by score / signal² and
  refined by least squares), an accuracy from the 95th percentile of the
  distances, and the summed score.
* ``group_cells`` does the same for every cell found for one query: cells
  whose coverage discs overlap form a group (issue 11; the old service
  grouped by cell area), each group one position, weighted by the signal
  above the radio's floor and 1 / radius².

Quirk Q1 is not reproduced: when a cluster has more than ``max_networks``
networks, the sample is the ``max_networks`` *heaviest* ones (ties kept in
input order), where the old service sorted by ascending score and kept the
lowest. The two agree on clusters of up to 20 Wi-Fi or 10 Bluetooth
networks. ``ichnaea/_fast/_weighting.pyx`` states the rules and the figures
that chose them.

Callers prepare the per-network inputs as spec 4.5 step 1 says: ages are
``max(|age or 0|, 1000)`` milliseconds and missing signals are replaced by
the radio type's minimum (-100 dBm Wi-Fi, -127 Bluetooth; -113/-121/-140
for GSM/WCDMA/LTE cells). Latitudes and longitudes are degrees, distances
and accuracies metres.
"""

import operator
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ichnaea import _fast

__all__ = [
    "AREA_RADIUS_BOUNDS_M",
    "CELL_MAX_ACCURACY_M",
    "CELL_MIN_ACCURACY_M",
    "CELL_RADIUS_BOUNDS_M",
    "CellPosition",
    "ClusterPosition",
    "aggregate_cluster_position",
    "cluster_networks",
    "group_cells",
]

Float64Array = NDArray[np.float64]
IndexArray = NDArray[np.int64]

# Accuracy bounds of a cell result (spec 4.7), metres.
CELL_MIN_ACCURACY_M = 1000.0
CELL_MAX_ACCURACY_M = 50000.0
# The bounds of a cell's radius in its weight and its group's reach
# (group_cells), metres: the cells' accuracy bounds; for cell areas the
# ceiling is the areas' (spec 4.8), 500 km.
CELL_RADIUS_BOUNDS_M = (1000.0, 50000.0)
AREA_RADIUS_BOUNDS_M = (1000.0, 500000.0)

# Real numeric dtypes: signed and unsigned integers and floats.
_NUMERIC_KINDS = frozenset("iuf")


@dataclass(frozen=True, slots=True)
class ClusterPosition:
    """The position of one Wi-Fi or Bluetooth cluster.

    Attributes
    ----------
    lat, lon : float
        Position, degrees.
    accuracy_m : float
        95th percentile of the distances to the sampled networks, clamped to
        the caller's bounds, metres.
    score : float
        Sum of the scores of every network of the cluster, sampled or not.
    sample_mask : ndarray of bool, shape (n,)
        True for the networks the position was computed from (the
        ``used_networks`` of the result).
    """

    lat: float
    lon: float
    accuracy_m: float
    score: float
    sample_mask: NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class CellPosition:
    """The position of one group of cells.

    Attributes
    ----------
    lat, lon : float
        Position, degrees.
    accuracy_m : float
        The cell's radius (one cell) or the 95th percentile of the distances
        to the cells, clamped to the caller's bounds, metres.
    score : float
        Sum of the cells' scores.
    members : ndarray of int64
        The input indices of the group's cells, ascending.
    """

    lat: float
    lon: float
    accuracy_m: float
    score: float
    members: IndexArray


def _vector(name: str, value: ArrayLike, size: int | None = None) -> Float64Array:
    """``value`` as a contiguous 1-D float64 array, of ``size`` if given."""
    array = np.asarray(value)
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(f"{name} must be real numbers, got dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if size is not None and array.shape[0] != size:
        raise ValueError(f"{name} has length {array.shape[0]}, expected {size}")
    if array.dtype != np.float64 or not array.flags.c_contiguous:
        array = np.ascontiguousarray(array, dtype=np.float64)
    return array


def _bound(name: str, value: float) -> float:
    """``value`` as a float that is not NaN and not negative."""
    bound = float(value)
    if not bound >= 0.0:
        raise ValueError(f"{name} must be a number ≥ 0, got {value!r}")
    return bound


def cluster_networks(
    lat_deg: ArrayLike, lon_deg: ArrayLike, *, max_distance_m: float
) -> list[IndexArray]:
    """Group networks whose positions agree (spec/locate.md 4.5 steps 3-6).

    Complete-linkage clustering over the pairwise ``geo.distance_m``
    (Vincenty on WGS-84), cut at ``max_distance_m``, as SciPy's
    ``fcluster(linkage(d, "complete"), max_distance_m, "distance")``: every
    two members of a cluster are at most ``max_distance_m`` apart. With
    exactly two networks this is one cluster if their distance is at most
    ``max_distance_m``.

    Parameters
    ----------
    lat_deg, lon_deg : array_like, shape (n,)
        Positions of the networks found for one query, degrees.
    max_distance_m : float
        Largest diameter of a cluster, metres (500 Wi-Fi, 100 Bluetooth).

    Returns
    -------
    list of ndarray of int64
        One array of input indices (ascending) per cluster of two or more
        networks, ordered by their first index. Empty for fewer than two
        networks. A network with a NaN or infinite coordinate is never in a
        cluster.

    Raises
    ------
    ValueError
        If the inputs are not 1-D arrays of equal length, or
        ``max_distance_m`` is negative or NaN.
    TypeError
        If an input is not real numbers.
    """
    lat = _vector("lat_deg", lat_deg)
    lon = _vector("lon_deg", lon_deg, lat.shape[0])
    limit = _bound("max_distance_m", max_distance_m)
    n = lat.shape[0]
    if n < 2:
        return []
    labels = np.empty(n, dtype=np.int64)
    n_groups = _fast.cluster_complete_linkage(lat, lon, limit, labels)
    if n_groups == n:
        return []
    members = np.empty(n, dtype=np.int64)
    ends = np.empty(n_groups, dtype=np.int64)
    kept = _fast.order_groups(labels, n_groups, 2, members, ends)
    clusters = []
    start = 0
    for end in ends[:kept].tolist():
        clusters.append(members[start:end])
        start = end
    return clusters


def aggregate_cluster_position(
    lat_deg: ArrayLike,
    lon_deg: ArrayLike,
    age_ms: ArrayLike,
    signal_dbm: ArrayLike,
    score: ArrayLike,
    radius_m: ArrayLike,
    *,
    max_networks: int,
    min_accuracy_m: float,
    max_accuracy_m: float,
) -> ClusterPosition:
    """Position, accuracy and score of one Wi-Fi/Bluetooth cluster (spec 4.6).

    1. Sample: the ``max_networks`` highest-scored networks, ties in input
       order (fixing quirk Q1, see the module docstring); all of them if
       the cluster is not larger.
    2. Weights ``min(√(2000 / age_ms), 1) · 10^(signal_dbm / 15) /
       clip(radius_m, 30, 300)`` (a NaN radius counts as 30) and their
       weighted mean of latitude and longitude: the position (issue 11; see
       ``ichnaea/_fast/_weighting.pyx``).
    3. Accuracy: the 95th percentile (linear interpolation) of the distances
       from the position to the sampled networks, clamped to
       ``[min_accuracy_m, max_accuracy_m]``.

    Parameters
    ----------
    lat_deg, lon_deg : array_like, shape (n,)
        The cluster's networks, degrees; n ≥ 1.
    age_ms : array_like, shape (n,)
        Observation ages, milliseconds, already ``max(|age or 0|, 1000)``.
    signal_dbm : array_like, shape (n,)
        Signal strengths, dBm, missing ones already set to the default.
    score : array_like, shape (n,)
        Station scores, > 0.
    radius_m : array_like, shape (n,)
        Station radii, metres; NaN for none.
    max_networks : int
        Largest sample (20 Wi-Fi, 10 Bluetooth), ≥ 1.
    min_accuracy_m, max_accuracy_m : float
        Accuracy bounds, metres (10 and 500 Wi-Fi, 10 and 50 Bluetooth).

    Returns
    -------
    ClusterPosition
        Position (degrees), accuracy (metres), the score summed over the
        whole cluster and the sample mask. NaN in a sampled network's input
        gives a NaN position and accuracy.

    Raises
    ------
    ValueError
        If the inputs are not 1-D arrays of one length ≥ 1, ``max_networks``
        is below 1, or an accuracy bound is negative or NaN.
    TypeError
        If an input is not real numbers or ``max_networks`` not an integer.
    """
    lat = _vector("lat_deg", lat_deg)
    n = lat.shape[0]
    lon = _vector("lon_deg", lon_deg, n)
    age = _vector("age_ms", age_ms, n)
    signal = _vector("signal_dbm", signal_dbm, n)
    scores = _vector("score", score, n)
    radius = _vector("radius_m", radius_m, n)
    if n == 0:
        raise ValueError("a cluster needs at least one network")
    sample_size = operator.index(max_networks)
    if sample_size < 1:
        raise ValueError(f"max_networks must be ≥ 1, got {max_networks}")
    lower = _bound("min_accuracy_m", min_accuracy_m)
    upper = _bound("max_accuracy_m", max_accuracy_m)
    mask = np.empty(n, dtype=np.uint8)
    out_lat, out_lon, accuracy, score_sum = _fast.aggregate_cluster(
        lat, lon, age, signal, scores, radius, sample_size, lower, upper, mask
    )
    return ClusterPosition(out_lat, out_lon, accuracy, score_sum, mask.view(np.bool_))


def group_cells(
    lat_deg: ArrayLike,
    lon_deg: ArrayLike,
    radius_m: ArrayLike,
    age_ms: ArrayLike,
    signal_dbm: ArrayLike,
    floor_dbm: ArrayLike,
    score: ArrayLike,
    *,
    radius_bounds_m: tuple[float, float] = CELL_RADIUS_BOUNDS_M,
    min_accuracy_m: float = CELL_MIN_ACCURACY_M,
    max_accuracy_m: float = CELL_MAX_ACCURACY_M,
) -> list[CellPosition]:
    """The cells found for one query, grouped and aggregated (spec 4.7 as issue 11
    changed it).

    The heaviest cell (weight ``min(√(2000 / age), 1) · 10^((signal - floor)
    / 15) / clip(radius, *radius_bounds_m)²``) seeds a group that takes
    every cell whose disc overlaps its own; the rest form further groups the same
    way. One cell gives its own position, its radius clamped to
    ``[min_accuracy_m, max_accuracy_m]`` and its score; several the
    weighted mean, the clamped 95th percentile of the distances from it to
    the cells and the sum of the scores.

    Parameters
    ----------
    lat_deg, lon_deg : array_like, shape (n,)
        The cells, degrees.
    radius_m : array_like, shape (n,)
        Cell radii, metres; NaN for none.
    age_ms, signal_dbm, score : array_like, shape (n,)
        As for ``aggregate_cluster_position`` (missing signals already the floor).
    floor_dbm : array_like, shape (n,)
        The lowest signal of each cell's radio (-113 GSM, -121 WCDMA, -140
        LTE, -156 NR), dBm.
    radius_bounds_m : (float, float)
        The bounds of the radii, metres: 1 km and 50 km for cells
        (``CELL_RADIUS_BOUNDS_M``), 1 km and 500 km for cell areas
        (``AREA_RADIUS_BOUNDS_M``).
    min_accuracy_m, max_accuracy_m : float
        Accuracy bounds, metres; 1 km and 50 km by default.

    Returns
    -------
    list of CellPosition
        One per group, the heaviest cell's first; empty for no cells.

    Raises
    ------
    ValueError
        If the inputs are not 1-D arrays of one length or an accuracy bound
        is negative or NaN.
    TypeError
        If an input is not real numbers.
    """
    lat = _vector("lat_deg", lat_deg)
    n = lat.shape[0]
    lon = _vector("lon_deg", lon_deg, n)
    radius = _vector("radius_m", radius_m, n)
    age = _vector("age_ms", age_ms, n)
    signal = _vector("signal_dbm", signal_dbm, n)
    floor = _vector("floor_dbm", floor_dbm, n)
    scores = _vector("score", score, n)
    lower = _bound("min_accuracy_m", min_accuracy_m)
    upper = _bound("max_accuracy_m", max_accuracy_m)
    least = _bound("radius_bounds_m", radius_bounds_m[0])
    most = _bound("radius_bounds_m", radius_bounds_m[1])
    group_of = np.empty(n, dtype=np.int64)
    groups = _fast.aggregate_cell_groups(
        lat, lon, radius, age, signal, floor, scores, least, most, lower, upper, group_of
    )
    return [
        CellPosition(out_lat, out_lon, accuracy, score_sum, np.flatnonzero(group_of == g))
        for g, (out_lat, out_lon, accuracy, score_sum) in enumerate(groups)
    ]
