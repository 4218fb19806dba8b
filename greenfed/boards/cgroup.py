"""The kernel's CPU controller, cgroup v1 or v2: find it, read a group's CPU time, set its quota.

Both layouts, chosen by what is mounted (``/proc/self/mounts``):

========================  ===================================  ================================
                          cgroup v1                            cgroup v2 (unified)
========================  ===================================  ================================
quota                     ``cpu.cfs_quota_us`` (-1: none) and  ``cpu.max``: "QUOTA PERIOD"
                          ``cpu.cfs_period_us`` (µs)           ("max PERIOD": none), µs
CPU time used             ``cpuacct.usage`` (ns), in the       ``cpu.stat`` ``usage_usec``
                          cpuacct hierarchy (may be separate)
throttling                ``cpu.stat``: ``nr_periods``,        ``cpu.stat``: ``nr_periods``,
                          ``nr_throttled``, ``throttled_time``  ``nr_throttled``,
                          (ns)                                 ``throttled_usec``
weight                    ``cpu.shares`` (default 1024)        ``cpu.weight`` (default 100)
========================  ===================================  ================================

v1 wins where a v1 hierarchy carries the ``cpu`` controller (a controller is bound to one
hierarchy only: a hybrid machine's unified mount then lists no ``cpu``). A group is a pair of
directories (the cpu and the cpuacct one; the same directory on v2 or a co-mounted v1).

Errors::

    CgroupError              a group's file could not be read or written (path and reason)
    └── CgroupUnavailable    no usable CPU controller here; ``reason`` says why
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

from greenfed.errors import GreenfedError

MIN_QUOTA_US = 1000  # the kernel refuses a CFS quota below 1 ms
MAX_PERIOD_US = 1_000_000


class CgroupError(GreenfedError):
    """A cgroup file could not be read or written; the message names it."""


class CgroupUnavailable(CgroupError):
    """This machine offers no usable CPU controller; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _unescape(path: str) -> str:
    """Mount points in /proc/self/mounts escape spaces and tabs as octal (``\\040``)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise CgroupError(f"{path}: {e.strerror or e}") from e


def _write(path: Path, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as e:
        why = "permission denied (not root?)" if e.errno in (errno.EACCES, errno.EPERM) else ""
        raise CgroupError(f"{path}: cannot write {text!r}: {why or e.strerror or e}") from e


def _keyed(text: str) -> Dict[str, int]:
    """``key value`` lines (cpu.stat) as a dict of integers."""
    out: Dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


@dataclass(frozen=True)
class Hierarchy:
    """Where the CPU controller lives: ``cpu_root`` (quota, throttling) and ``acct_root``
    (CPU time: the cpuacct hierarchy on v1, which may be a separate mount)."""

    version: int  # 1 or 2
    cpu_root: Path
    acct_root: Path

    def describe(self) -> str:
        if self.version == 2:
            return f"cgroup v2 at {self.cpu_root}"
        if self.acct_root == self.cpu_root:
            return f"cgroup v1 cpu,cpuacct at {self.cpu_root}"
        return f"cgroup v1 cpu at {self.cpu_root}, cpuacct at {self.acct_root}"


def find_hierarchy(mounts: str, root: Path = Path("/")) -> Hierarchy:
    """The CPU controller's hierarchy from the text of ``/proc/self/mounts``; mount points
    are re-rooted under ``root`` (a copied tree in tests). Raises :class:`CgroupUnavailable`."""
    cpu: Optional[Path] = None
    acct: Optional[Path] = None
    unified: List[Path] = []
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        where = Path(root) / _unescape(parts[1]).lstrip("/")
        options = parts[3].split(",")
        if parts[2] == "cgroup":
            if "cpu" in options and cpu is None:
                cpu = where
            if "cpuacct" in options and acct is None:
                acct = where
        elif parts[2] == "cgroup2":
            unified.append(where)
    if cpu is not None:
        if acct is None:
            raise CgroupUnavailable(
                f"cgroup v1 has the cpu controller at {cpu} but no cpuacct hierarchy is "
                "mounted: a group's CPU time cannot be read"
            )
        return Hierarchy(1, cpu, acct)
    offered = []
    for where in unified:
        try:
            controllers = (where / "cgroup.controllers").read_text().split()
        except OSError:
            continue
        if "cpu" in controllers:
            return Hierarchy(2, where, where)
        offered.append(f"{where} offers {' '.join(controllers) or 'nothing'}")
    seen = "; ".join(offered) if offered else "no cgroup2 mount"
    raise CgroupUnavailable(
        f"no cgroup hierarchy has the cpu controller (no cgroup v1 'cpu' mount; {seen})"
    )


def detect(root: Path = Path("/")) -> Hierarchy:
    """The CPU controller of this machine (``root``: a copied tree holding proc/self/mounts)."""
    path = Path(root) / "proc/self/mounts"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise CgroupUnavailable(f"cannot read {path}: {e.strerror or e}") from e
    return find_hierarchy(text, root)


@dataclass(frozen=True)
class Throttling:
    """CFS bandwidth periods seen, periods in which the group hit its quota, time held back."""

    periods: int
    throttled: int
    throttled_s: float


@dataclass(frozen=True)
class CpuGroup:
    """One cgroup's CPU files: ``cpu_dir`` (quota) and ``acct_dir`` (CPU time)."""

    cpu_dir: Path
    acct_dir: Path
    version: int

    @classmethod
    def open(cls, cpu_dir: Path, acct_dir: Optional[Path] = None) -> CpuGroup:
        """The group at ``cpu_dir`` (and ``acct_dir``, v1's cpuacct directory when separate);
        the layout is told by its files. Raises :class:`CgroupError` when it is neither."""
        cpu_dir = Path(cpu_dir)
        acct = Path(acct_dir) if acct_dir else cpu_dir
        if (cpu_dir / "cpu.max").is_file():
            return cls(cpu_dir, cpu_dir, 2)
        if (cpu_dir / "cpu.cfs_quota_us").is_file():
            if not (acct / "cpuacct.usage").is_file():
                raise CgroupError(f"{acct}: no cpuacct.usage (the group's cpuacct directory)")
            return cls(cpu_dir, acct, 1)
        raise CgroupError(f"{cpu_dir}: not a cgroup with the cpu controller (no cpu.max, no "
                          "cpu.cfs_quota_us)")  # fmt: skip

    # -- quota ---------------------------------------------------------------------------
    @property
    def quota_file(self) -> Path:
        return self.cpu_dir / ("cpu.max" if self.version == 2 else "cpu.cfs_quota_us")

    def limits_us(self) -> Tuple[Optional[int], int]:
        """(quota, period) in µs; quota None when unlimited."""
        if self.version == 2:
            fields = _read(self.cpu_dir / "cpu.max").split()
            if len(fields) != 2:
                raise CgroupError(f"{self.cpu_dir}/cpu.max: expected 'QUOTA PERIOD'")
            period = int(fields[1])
            return (None if fields[0] == "max" else int(fields[0])), period
        quota = int(_read(self.cpu_dir / "cpu.cfs_quota_us"))
        period = int(_read(self.cpu_dir / "cpu.cfs_period_us"))
        return (None if quota < 0 else quota), period

    def quota_fraction(self) -> Optional[float]:
        """Host CPUs the quota allows (quota / period); None when unlimited."""
        quota, period = self.limits_us()
        return None if quota is None else quota / period

    def set_limits_us(self, quota_us: Optional[int], period_us: int) -> None:
        """Write the quota (None: unlimited) and the period, in µs."""
        if not 1000 <= period_us <= MAX_PERIOD_US:
            raise CgroupError(f"period {period_us} µs outside 1000..{MAX_PERIOD_US}")
        if quota_us is not None and quota_us < MIN_QUOTA_US:
            raise CgroupError(f"quota {quota_us} µs below the kernel's {MIN_QUOTA_US} µs")
        if self.version == 2:
            _write(self.cpu_dir / "cpu.max", f"{quota_us or 'max'} {period_us}")
            return
        _write(self.cpu_dir / "cpu.cfs_quota_us", "-1")  # any period is valid without a quota
        _write(self.cpu_dir / "cpu.cfs_period_us", str(period_us))
        _write(self.cpu_dir / "cpu.cfs_quota_us", str(quota_us if quota_us is not None else -1))

    def set_fraction(self, cpus: float, period_us: int) -> int:
        """Quota for ``cpus`` host CPUs (at least the kernel's 1 ms); returns the quota (µs)."""
        quota = max(MIN_QUOTA_US, round(cpus * period_us))
        self.set_limits_us(quota, period_us)
        return quota

    def set_weight(self, weight: int) -> None:
        """CFS weight in v2 units (1..10000, default 100); v1 gets ``cpu.shares`` = w·1024/100."""
        if self.version == 2:
            _write(self.cpu_dir / "cpu.weight", str(weight))
        else:
            _write(self.cpu_dir / "cpu.shares", str(max(2, weight * 1024 // 100)))

    # -- accounting ----------------------------------------------------------------------
    def usage_s(self) -> float:
        """CPU seconds the group's processes used since it was created."""
        if self.version == 2:
            stat = _keyed(_read(self.cpu_dir / "cpu.stat"))
            if "usage_usec" not in stat:
                raise CgroupError(f"{self.cpu_dir}/cpu.stat: no usage_usec")
            return stat["usage_usec"] / 1e6
        try:
            return int(_read(self.acct_dir / "cpuacct.usage")) / 1e9
        except ValueError as e:
            raise CgroupError(f"{self.acct_dir}/cpuacct.usage: not an integer") from e

    def throttling(self) -> Throttling:
        stat = _keyed(_read(self.cpu_dir / "cpu.stat"))
        held = stat.get("throttled_usec", 0) / 1e6 if self.version == 2 else (
            stat.get("throttled_time", 0) / 1e9)  # fmt: skip
        return Throttling(stat.get("nr_periods", 0), stat.get("nr_throttled", 0), held)

    # -- membership ----------------------------------------------------------------------
    @property
    def procs_files(self) -> List[Path]:
        """The ``cgroup.procs`` file(s) a process is written to, to join the group."""
        files = [self.cpu_dir / "cgroup.procs"]
        if self.acct_dir != self.cpu_dir:
            files.append(self.acct_dir / "cgroup.procs")
        return files

    def pids(self) -> List[int]:
        """Processes in the group (either hierarchy), ascending."""
        out: Set[int] = set()
        for f in self.procs_files:
            try:
                out.update(int(x) for x in f.read_text().split())
            except OSError:
                continue
        return sorted(out)
