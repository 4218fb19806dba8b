"""Which runs own which namespaces, and removing what a killed run left behind.

A testbed writes ``/run/greenfed/links/<prefix>.json`` before it creates anything (its owner's
pid and start time, its namespaces as it adds them) and removes it after tearing everything
down. ``/run`` is a tmpfs, as ``/run/netns`` is: both vanish at reboot together.

:func:`cleanup` (``greenfed-coordinator links cleanup``) removes the runs whose owner process is
gone (a SIGKILLed experiment, a crashed test): it kills the processes still inside their
namespaces (agents, coordinator, delay lines), deletes the namespaces (their veths, TUN devices
and qdiscs go with them) and the record. Namespaces named like a greenfed run
(:data:`~coordinator.links.kernel.NS_PATTERN`) that no record claims are removed too. Runs
whose owner is alive are left alone unless ``everything`` is asked for.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional, Type, TypeVar

from coordinator.links import kernel
from coordinator.links.errors import LinkError

REGISTRY_DIR = Path("/run/greenfed/links")
KILL_GRACE_S = 3.0
# A namespace no record claims is left alone this long after its creation: a live process may
# be probing the kernel with it (kernel.probe's scratch namespace has no record).
ORPHAN_MIN_AGE_S = 60.0


def process_start_ticks(pid: int) -> Optional[int]:
    """Start time of ``pid`` in clock ticks since boot (/proc/PID/stat field 22); None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def alive(pid: int, start_ticks: Optional[int]) -> bool:
    """True while ``pid`` runs (not a zombie) and, given ``start_ticks``, is not a recycled pid."""
    now = process_start_ticks(pid)
    if now is None or _state(pid) in ("Z", "X"):
        return False
    return start_ticks is None or now == start_ticks


R = TypeVar("R", bound="OwnedRecord")


@dataclass
class OwnedRecord:
    """A local run's record: its owner (pid and start time, so a recycled pid is never taken
    for it) and its folder. Subclasses add what the run creates and name their :attr:`folder`
    (the link testbed's and the emulated boards' records live apart)."""

    folder: ClassVar[Path] = REGISTRY_DIR
    prefix: str
    owner_pid: int
    owner_start_ticks: Optional[int]
    created_unix: float
    run_dir: str = ""

    @property
    def path(self) -> Path:
        return self.folder / f"{self.prefix}.json"

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=1) + "\n", encoding="utf-8")
        tmp.replace(self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    @classmethod
    def create(cls: Type[R], prefix: str, run_dir: str, **owned: Any) -> R:
        """A record owned by this process, saved before the run creates anything."""
        pid = os.getpid()
        record = cls(prefix, pid, process_start_ticks(pid), time.time(), run_dir, **owned)
        record.save()
        return record

    @classmethod
    def load_all(cls: Type[R]) -> List[R]:
        out = []
        for path in sorted(cls.folder.glob("gf*.json")):
            try:
                data: Dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
                out.append(cls(**data))
            except (OSError, ValueError, TypeError):
                continue  # a torn record: what it owned is found by name
        return out


@dataclass
class RunRecord(OwnedRecord):
    namespaces: List[str] = field(default_factory=list)


def records() -> List[RunRecord]:
    return RunRecord.load_all()


def orphaned(recs: List[R], everything: bool, kept: List[str]) -> List[R]:
    """The records to clean up: those whose owner is gone (all of them with ``everything``);
    the others' prefixes are appended to ``kept``."""
    out = []
    for rec in recs:
        if not everything and alive(rec.owner_pid, rec.owner_start_ticks):
            kept.append(rec.prefix)
        else:
            out.append(rec)
    return out


def kill_namespace_processes(namespaces: List[str], grace_s: float = KILL_GRACE_S) -> List[int]:
    """SIGTERM every process in ``namespaces``, SIGKILL what is left after ``grace_s``."""
    pids = sorted({p for ns in namespaces for p in kernel.netns_pids(ns)} - {os.getpid()})
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        end = time.monotonic() + grace_s
        while time.monotonic() < end and any(_exists(p) for p in pids):
            time.sleep(0.05)
    return pids


def _state(pid: int) -> str:
    """The process state letter (R, S, Z, ...); "X" when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "X"
    return stat[stat.rindex(")") + 2 :].split()[0]


def _exists(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone; one of our own children is reaped)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return _state(pid) not in ("Z", "X")


def remove_namespaces(namespaces: List[str]) -> List[str]:
    """Kill what runs inside, then delete each namespace; returns those deleted."""
    present = set(kernel.netns_list())
    mine = [ns for ns in namespaces if ns in present]
    kill_namespace_processes(mine)
    for ns in mine:
        kernel.netns_delete(ns)
    return mine


def _age_s(ns: str) -> float:
    try:
        return time.time() - (Path(kernel.NETNS_DIR) / ns).stat().st_mtime
    except OSError:
        return float("inf")


@dataclass
class CleanupResult:
    runs: List[str] = field(default_factory=list)  # prefixes removed
    namespaces: List[str] = field(default_factory=list)
    kept: List[str] = field(default_factory=list)  # live runs left alone
    errors: List[str] = field(default_factory=list)


def cleanup(everything: bool = False, dry_run: bool = False) -> CleanupResult:
    """Remove dead runs' namespaces (all greenfed runs' with ``everything``)."""
    result = CleanupResult()
    recs = records()
    claimed = {rec.prefix for rec in recs}
    for rec in orphaned(recs, everything, result.kept):
        names = [ns for ns in kernel.netns_list() if ns.startswith(rec.prefix + "-")]
        result.runs.append(rec.prefix)
        result.namespaces += names
        if dry_run:
            continue
        try:
            remove_namespaces(names)
            rec.remove()
        except LinkError as e:
            result.errors.append(f"{rec.prefix}: {e}")
    orphans: Dict[str, List[str]] = {}
    for ns in kernel.netns_list():
        m = kernel.NS_PATTERN.match(ns)
        if m and m.group(1) not in claimed and (everything or _age_s(ns) > ORPHAN_MIN_AGE_S):
            orphans.setdefault(m.group(1), []).append(ns)
    for prefix, names in sorted(orphans.items()):
        result.runs.append(prefix)
        result.namespaces += names
        if dry_run:
            continue
        try:
            remove_namespaces(names)
        except LinkError as e:
            result.errors.append(f"{prefix}: {e}")
    return result
