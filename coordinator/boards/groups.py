"""The kernel side of an emulated fleet: create its cgroups, start processes in them, remove them.

Names: every run's cgroups live in one directory ``greenfed-<prefix>`` (``prefix`` = ``gf`` + 6
hex digits, like the link testbed's) under the CPU controller's hierarchy root, one
subdirectory per device; on cgroup v1 with separate ``cpu`` and ``cpuacct`` hierarchies the same
names exist in both. A leftover is always recognisable (:data:`RUN_PATTERN`).

The run's directory carries the fleet's **weight**: by default the largest the kernel takes, so
on a busy machine the boards still get the CPU time their quotas allow (the quota, the emulated
clock, is what limits them; the weight only stops other work from taking it first). The fleet's
quotas together stay under ``cpus_budget`` host CPUs (coordinator/boards/fleet.py), so what the
weight reserves is bounded.

A process joins a board's group before it runs anything: :func:`enter_prefix` is an argv prefix
(a POSIX shell writing its own pid into the group's ``cgroup.procs`` files, then exec'ing the
command), so the agent and every process it starts are counted and limited from the first
instruction.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import time
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

from coordinator.boards.errors import BoardsUnavailable
from greenfed.boards import CgroupError, CgroupUnavailable, CpuGroup, Hierarchy, detect

RUN_PATTERN = re.compile(r"^greenfed-(gf[0-9a-f]{6})$")
MAX_WEIGHT = 10_000  # cgroup v2 cpu.weight's maximum (v1: cpu.shares 102400)
KILL_GRACE_S = 3.0


def probe(root: Path = Path("/")) -> Tuple[Optional[Hierarchy], str]:
    """The CPU controller's hierarchy if this process can create groups in it, else why not."""
    try:
        h = detect(root)
    except CgroupUnavailable as e:
        return None, e.reason
    for d in {h.cpu_root, h.acct_root}:
        if not os.access(d, os.W_OK):
            who = "not root" if os.geteuid() != 0 else "read-only (a container without rights?)"
            return None, f"cannot create cgroups under {d}: {who}"
    if h.version == 2:
        control = h.cpu_root / "cgroup.subtree_control"
        if not os.access(control, os.W_OK):
            return None, f"cannot enable the cpu controller in {control}"
    return h, h.describe()


def run_dirs(h: Hierarchy, name: str) -> List[Path]:
    """The run's directories: one per hierarchy (one on v2 or a co-mounted v1)."""
    return sorted({h.cpu_root / name, h.acct_root / name})


def _mkdir(path: Path) -> None:
    try:
        path.mkdir()
    except OSError as e:
        raise BoardsUnavailable(f"cannot create cgroup {path}: {e.strerror or e}") from e


def _enable_cpu(directory: Path) -> None:
    """cgroup v2: let ``directory``'s children use the cpu controller."""
    control = directory / "cgroup.subtree_control"
    if "cpu" in control.read_text().split():
        return
    try:
        control.write_text("+cpu")
    except OSError as e:
        raise BoardsUnavailable(f"cannot enable the cpu controller in {control}: {e}") from e


def create_run(h: Hierarchy, name: str, weight: int = MAX_WEIGHT) -> None:
    """Create the run's directories (``name``) and give them the fleet's weight."""
    if h.version == 2:
        _enable_cpu(h.cpu_root)
    for d in run_dirs(h, name):
        _mkdir(d)
    if h.version == 2:
        _enable_cpu(h.cpu_root / name)
        (h.cpu_root / name / "cpu.weight").write_text(str(weight))
    else:
        (h.cpu_root / name / "cpu.shares").write_text(str(weight * 1024 // 100))


def create_board(h: Hierarchy, run: str, device: str, cpus: float, period_us: int) -> CpuGroup:
    """A device's group under the run, its quota set to ``cpus`` host CPUs (its top step)."""
    for d in run_dirs(h, run):
        _mkdir(d / device)
    group = CpuGroup.open(h.cpu_root / run / device, h.acct_root / run / device)
    try:
        group.set_fraction(cpus, period_us)
    except CgroupError as e:
        raise BoardsUnavailable(str(e)) from e
    return group


def enter_prefix(group: CpuGroup) -> List[str]:
    """argv prefix: join ``group`` (every hierarchy), then exec the rest of the argv."""
    files = [str(f) for f in group.procs_files]
    joins = " && ".join(f'echo $$ > "${i}"' for i in range(1, len(files) + 1))
    script = f'{joins} && shift {len(files)} && exec "$@"'
    return ["sh", "-c", script, "greenfed-board", *files]


def _pids(directories: List[Path]) -> List[int]:
    out: Set[int] = set()
    for d in directories:
        for procs in d.rglob("cgroup.procs") if d.is_dir() else ():
            with contextlib.suppress(OSError, ValueError):
                out.update(int(x) for x in procs.read_text().split())
    return sorted(out - {os.getpid()})


def remove_run(directories: List[Path], grace_s: float = KILL_GRACE_S) -> List[str]:
    """Stop every process left in the run's groups (SIGTERM, then SIGKILL after ``grace_s``)
    and remove the groups, deepest first; returns what could not be removed, with why."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _pids(directories)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        end = time.monotonic() + grace_s
        while pids and time.monotonic() < end:  # an exited process leaves cgroup.procs at once
            time.sleep(0.05)
            pids = _pids(directories)
        if not pids:
            break
    errors = []
    for d in directories:
        if not d.is_dir():
            continue
        for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            errors += _rmdir(sub)
        errors += _rmdir(d)
    return errors


def _rmdir(d: Path) -> List[str]:
    try:
        d.rmdir()
    except FileNotFoundError:
        return []
    except OSError as e:
        busy = " (processes still inside)" if e.errno == errno.EBUSY else ""
        return [f"{d}: {e.strerror or e}{busy}"]
    return []


def leftover_runs(h: Hierarchy) -> List[Tuple[str, List[Path]]]:
    """(prefix, directories) of every greenfed run's groups present under the hierarchy."""
    found: Dict[str, List[Path]] = {}
    for root in {h.cpu_root, h.acct_root}:
        with contextlib.suppress(OSError):
            for d in root.iterdir():
                m = RUN_PATTERN.match(d.name)
                if m and d.is_dir():
                    found.setdefault(m.group(1), []).append(d)
    return sorted(found.items())
