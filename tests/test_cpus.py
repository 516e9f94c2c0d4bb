"""The process-count default follows the affinity mask and the cgroup CPU quota."""

from __future__ import annotations

from pathlib import Path

import pytest

from ichnaea.cpus import cgroup_cpu_limit, usable_cpu_count


def fake_root(tmp_path: Path, files: dict[str, str]) -> Path:
    """A directory standing in for ``/``, holding ``files`` (path relative to it → text)."""
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.fixture
def eight_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """An affinity mask of eight CPUs, more than any quota below allows."""
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(8)))


V2_IN_CONTAINER = {"proc/self/cgroup": "0::/\n"}
V1_IN_CONTAINER = {"proc/self/cgroup": "4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n"}


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("150000 100000\n", 2), ("50000 100000\n", 1), ("400000 100000\n", 4), ("max 100000\n", 8)],
)
@pytest.mark.usefixtures("eight_cpus")
def test_cgroup_v2_quota_limits_cpu_count_rounded_up(
    tmp_path: Path, cpu_max: str, expected: int
) -> None:
    root = fake_root(tmp_path, {**V2_IN_CONTAINER, "sys/fs/cgroup/cpu.max": cpu_max})
    assert usable_cpu_count(root) == expected


@pytest.mark.parametrize(
    ("quota_us", "expected"), [("250000", 3), ("-1", 8), ("100000", 1), ("20000", 1)]
)
@pytest.mark.usefixtures("eight_cpus")
def test_cgroup_v1_quota_limits_cpu_count_rounded_up(
    tmp_path: Path, quota_us: str, expected: int
) -> None:
    # Without a cgroup namespace the container sees its own group at the
    # mount point, while /proc/self/cgroup names the host's path.
    root = fake_root(
        tmp_path,
        {
            **V1_IN_CONTAINER,
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": f"{quota_us}\n",
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
        },
    )
    assert usable_cpu_count(root) == expected


def test_cgroup_v2_quota_of_a_parent_group_applies(tmp_path: Path) -> None:
    root = fake_root(
        tmp_path,
        {
            "proc/self/cgroup": "0::/system.slice/ichnaea.service\n",
            "sys/fs/cgroup/system.slice/cpu.max": "200000 100000\n",
            "sys/fs/cgroup/system.slice/ichnaea.service/cpu.max": "max 100000\n",
        },
    )
    assert cgroup_cpu_limit(root) == 2.0


def test_affinity_mask_limits_below_the_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0, 1})
    root = fake_root(tmp_path, {**V2_IN_CONTAINER, "sys/fs/cgroup/cpu.max": "800000 100000\n"})
    assert usable_cpu_count(root) == 2


@pytest.mark.usefixtures("eight_cpus")
def test_no_cgroup_files_means_no_quota(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(tmp_path) is None
    assert usable_cpu_count(tmp_path) == 8


@pytest.mark.usefixtures("eight_cpus")
def test_unreadable_quota_is_ignored(tmp_path: Path) -> None:
    root = fake_root(tmp_path, {**V2_IN_CONTAINER, "sys/fs/cgroup/cpu.max": "garbage\n"})
    assert usable_cpu_count(root) == 8


def test_process_count_defaults_follow_the_cgroup_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ichnaea import config

    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(8)))
    root = fake_root(tmp_path, {**V2_IN_CONTAINER, "sys/fs/cgroup/cpu.max": "150000 100000\n"})
    monkeypatch.setattr("ichnaea.cpus.SYSTEM_ROOT", root)
    settings = config.load_settings({"ICHNAEA_DATA_DIR": str(tmp_path / "data")})
    assert settings.web_processes == settings.worker_processes == 2
