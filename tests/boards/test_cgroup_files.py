"""The CPU controller's files, v1 and v2, read and written on copied trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenfed.boards import CgroupError, CgroupUnavailable, CpuGroup, detect, find_hierarchy
from tests.boards.conftest import FIXTURES, V1_BOARD, V2_BOARD, tree


def test_v1_with_separate_cpuacct_beside_a_unified_mount_without_cpu() -> None:
    h = detect(FIXTURES / "cgroup_v1")
    assert h.version == 1
    assert h.cpu_root == FIXTURES / "cgroup_v1/sys/fs/cgroup/cpu"
    assert h.acct_root == FIXTURES / "cgroup_v1/sys/fs/cgroup/cpuacct"
    assert "cpuacct at" in h.describe()


def test_v2_unified_hierarchy() -> None:
    h = detect(FIXTURES / "cgroup_v2")
    assert (h.version, h.cpu_root, h.acct_root) == (
        2, FIXTURES / "cgroup_v2/sys/fs/cgroup", FIXTURES / "cgroup_v2/sys/fs/cgroup"
    )  # fmt: skip


def test_co_mounted_v1_and_escaped_mount_points(tmp_path: Path) -> None:
    h = find_hierarchy(
        "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,cpu,cpuacct 0 0\n"
        "cgroup /my\\040cg cgroup rw,memory 0 0\n",
        tmp_path,
    )
    assert h.version == 1 and h.cpu_root == h.acct_root == tmp_path / "sys/fs/cgroup/cpu,cpuacct"
    assert "cpu,cpuacct at" in h.describe()


@pytest.mark.parametrize(
    ("mounts", "reason"),
    [
        ("cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n", "no cpuacct hierarchy"),
        ("cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n", "no cgroup2 mount"),
        ("proc /proc proc rw 0 0\n", "no cgroup hierarchy has the cpu controller"),
    ],
)
def test_unavailable_says_why(tmp_path: Path, mounts: str, reason: str) -> None:
    with pytest.raises(CgroupUnavailable, match=reason):
        find_hierarchy(mounts, tmp_path)


def test_a_unified_mount_without_cpu_names_what_it_offers() -> None:
    text = (FIXTURES / "cgroup_v1/proc/self/mounts").read_text()
    only_unified = "\n".join(line for line in text.splitlines() if "cgroup2" in line)
    with pytest.raises(CgroupUnavailable, match="offers hugetlb"):
        find_hierarchy(only_unified, FIXTURES / "cgroup_v1")


def test_v1_group_quota_usage_and_throttling(tmp_path: Path) -> None:
    root = tree(tmp_path, "cgroup_v1")
    g = CpuGroup.open(root / V1_BOARD[0], root / V1_BOARD[1])
    assert g.version == 1
    assert g.limits_us() == (10000, 50000) and g.quota_fraction() == pytest.approx(0.2)
    assert g.usage_s() == pytest.approx(0.203836220)
    t = g.throttling()
    assert (t.periods, t.throttled, t.throttled_s) == (24, 18, pytest.approx(0.361422856))
    assert g.procs_files == [root / d / "cgroup.procs" for d in V1_BOARD]
    assert g.set_fraction(0.05, 20000) == 1000
    assert (root / V1_BOARD[0] / "cpu.cfs_period_us").read_text() == "20000"
    assert (root / V1_BOARD[0] / "cpu.cfs_quota_us").read_text() == "1000"
    g.set_limits_us(None, 50000)
    assert g.quota_fraction() is None
    g.set_weight(10000)
    assert (root / V1_BOARD[0] / "cpu.shares").read_text() == "102400"


def test_v2_group_quota_usage_and_throttling(tmp_path: Path) -> None:
    root = tree(tmp_path, "cgroup_v2")
    g = CpuGroup.open(root / V2_BOARD)
    assert g.version == 2 and g.acct_dir == g.cpu_dir
    assert g.limits_us() == (10000, 50000)
    assert g.usage_s() == pytest.approx(0.203836)
    assert g.throttling().throttled_s == pytest.approx(0.361422)
    assert g.set_fraction(0.3, 50000) == 15000
    assert (root / V2_BOARD / "cpu.max").read_text() == "15000 50000"
    g.set_limits_us(None, 100000)
    assert (root / V2_BOARD / "cpu.max").read_text() == "max 100000"
    assert g.quota_fraction() is None
    g.set_weight(500)
    assert (root / V2_BOARD / "cpu.weight").read_text() == "500"


def test_bad_groups_and_values_are_refused_with_the_path(tmp_path: Path) -> None:
    root = tree(tmp_path, "cgroup_v1")
    with pytest.raises(CgroupError, match="not a cgroup with the cpu controller"):
        CpuGroup.open(tmp_path)
    with pytest.raises(CgroupError, match=r"no cpuacct\.usage"):
        CpuGroup.open(root / V1_BOARD[0], tmp_path)
    g = CpuGroup.open(root / V1_BOARD[0], root / V1_BOARD[1])
    with pytest.raises(CgroupError, match="below the kernel's 1000"):
        g.set_limits_us(500, 50000)
    with pytest.raises(CgroupError, match="period"):
        g.set_limits_us(5000, 500)
    (root / V1_BOARD[1] / "cpuacct.usage").write_text("garbage")
    with pytest.raises(CgroupError, match="not an integer"):
        g.usage_s()
    (root / V1_BOARD[1] / "cpuacct.usage").unlink()
    with pytest.raises(CgroupError, match=r"cpuacct\.usage"):
        g.usage_s()
