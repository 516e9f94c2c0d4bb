"""How many CPUs this process may really use: the default of every process count.

Two limits apply, and the smaller one wins:

* the affinity mask (``os.sched_getaffinity``: ``taskset``, ``docker run
  --cpuset-cpus``), a set of whole CPUs;
* the cgroup CPU quota (``docker run --cpus``, Kubernetes CPU limits,
  systemd ``CPUQuota=``), CPU time per period: ``quota / period`` CPUs,
  rounded up, since 1.5 CPUs keep two processes busy at three quarters.

The quota is read from the cgroup files: on cgroup v2, ``cpu.max``
(``"<quota> <period>"`` or ``"max <period>"``); on cgroup v1,
``cpu.cfs_quota_us`` (``-1`` means none) over ``cpu.cfs_period_us``. The
process's own group comes from ``/proc/self/cgroup``, and the quota of every
group above it counts too (a parent's limit applies to its children). In a
container without a cgroup namespace that path is the host's and does not
exist under the container's mount, whose root then is the container's own
group. A file that is missing or cannot be parsed is no limit.

``usable_cpu_count`` takes the filesystem root as a parameter so tests can
point it at fake cgroup files.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

SYSTEM_ROOT = Path("/")
CGROUP_MOUNT = Path("sys/fs/cgroup")
# Where cgroup v1 mounts the cpu controller (Debian links "cpu" to the pair).
V1_CPU_MOUNTS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


def usable_cpu_count(root: Path | None = None) -> int:
    """The CPUs this process may use: affinity mask and cgroup quota, at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cpus = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        cpus = min(cpus, math.ceil(limit))
    return max(1, cpus)


def cgroup_cpu_limit(root: Path | None = None) -> float | None:
    """The CPUs the cgroup quota allows (e.g. 1.5), or None when there is no quota."""
    root = SYSTEM_ROOT if root is None else root
    mount = root / CGROUP_MOUNT
    groups = _own_groups(root)
    limits: list[float] = []
    for directory in _groups_upwards(mount, groups.get("", "/")):
        limits += _v2_limit(directory / "cpu.max")
    for name in V1_CPU_MOUNTS:
        if (mount / name).is_dir():
            for directory in _groups_upwards(mount / name, groups.get("cpu", "/")):
                limits += _v1_limit(directory)
    return min(limits, default=None)


def _own_groups(root: Path) -> dict[str, str]:
    """Controller → this process's group path, from ``/proc/self/cgroup``.

    The cgroup v2 line (``0::/path``) is under the key ``""``.
    """
    try:
        text = (root / "proc/self/cgroup").read_text()
    except OSError:
        return {}
    groups: dict[str, str] = {}
    for line in text.splitlines():
        _id, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if not controllers:
            groups[""] = path
        for controller in controllers.split(","):
            groups.setdefault(controller, path)
    return groups


def _groups_upwards(mount: Path, path: str) -> list[Path]:
    """The group directory of ``path`` under ``mount`` and each parent up to ``mount``."""
    group = mount / path.lstrip("/")
    if not group.is_dir():
        # A host path seen from inside a container: the mount is our group.
        return [mount]
    found = [group]
    while group != mount and group.parent != group:
        group = group.parent
        found.append(group)
    return found


def _v2_limit(cpu_max: Path) -> list[float]:
    try:
        quota, period = cpu_max.read_text().split()
        if quota == "max":
            return []
        return [int(quota) / int(period)]
    except (OSError, ValueError, ZeroDivisionError):
        return []


def _v1_limit(directory: Path) -> list[float]:
    try:
        quota = int((directory / "cpu.cfs_quota_us").read_text())
        period = int((directory / "cpu.cfs_period_us").read_text())
        if quota <= 0:
            return []
        return [quota / period]
    except (OSError, ValueError, ZeroDivisionError):
        return []
