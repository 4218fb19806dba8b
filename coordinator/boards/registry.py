"""Which runs own which cgroups, and removing what a killed run left behind.

A fleet writes ``/run/greenfed/boards/<prefix>.json`` (its owner's pid and start time, the run's
cgroup directories) before it creates any group, and removes it after removing them. After a
SIGKILL the groups stay, with the agents still inside when they outlived the owner;
:func:`cleanup` (``greenfed-coordinator boards cleanup``, also run by ``links cleanup``) stops
those processes and removes the groups of every run whose owner is gone. Groups named like a
greenfed run (``greenfed-gfXXXXXX``) that no record claims are removed too once a minute old.
Runs whose owner lives are left alone unless ``everything`` is asked for.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from coordinator.boards import groups
from coordinator.links.registry import alive, process_start_ticks

REGISTRY_DIR = Path("/run/greenfed/boards")
ORPHAN_MIN_AGE_S = 60.0  # an unclaimed group younger than this may be a run starting up


@dataclass
class BoardRecord:
    prefix: str
    owner_pid: int
    owner_start_ticks: Optional[int]
    created_unix: float
    run_dir: str = ""
    directories: List[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return REGISTRY_DIR / f"{self.prefix}.json"

    def save(self) -> None:
        REGISTRY_DIR.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=1) + "\n", encoding="utf-8")
        tmp.replace(self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    @classmethod
    def create(cls, prefix: str, run_dir: str, directories: List[Path]) -> BoardRecord:
        pid = os.getpid()
        rec = cls(prefix, pid, process_start_ticks(pid), time.time(), run_dir,
                  [str(d) for d in directories])  # fmt: skip
        rec.save()
        return rec


def records() -> List[BoardRecord]:
    out = []
    for path in sorted(REGISTRY_DIR.glob("gf*.json")):
        try:
            data: Dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            out.append(BoardRecord(**data))
        except (OSError, ValueError, TypeError):
            continue  # a torn record: its groups are found by name below
    return out


@dataclass
class CleanupResult:
    runs: List[str] = field(default_factory=list)  # prefixes removed
    groups: List[str] = field(default_factory=list)  # run directories removed
    kept: List[str] = field(default_factory=list)  # live runs left alone
    errors: List[str] = field(default_factory=list)


def _age_s(directory: Path) -> float:
    try:
        return time.time() - directory.stat().st_mtime
    except OSError:
        return float("inf")


def cleanup(everything: bool = False, dry_run: bool = False) -> CleanupResult:
    """Remove dead runs' cgroups (every greenfed run's with ``everything``)."""
    result = CleanupResult()
    claimed = set()
    for rec in records():
        claimed.add(rec.prefix)
        if not everything and alive(rec.owner_pid, rec.owner_start_ticks):
            result.kept.append(rec.prefix)
            continue
        present = [Path(d) for d in rec.directories if Path(d).is_dir()]
        result.runs.append(rec.prefix)
        result.groups += [str(d) for d in present]
        if not dry_run:
            result.errors += groups.remove_run(present)
            rec.remove()
    h, _ = groups.probe()
    if h is None:
        return result
    for prefix, dirs in groups.leftover_runs(h):
        if prefix in claimed or not (everything or min(map(_age_s, dirs)) > ORPHAN_MIN_AGE_S):
            continue
        result.runs.append(prefix)
        result.groups += [str(d) for d in dirs]
        if not dry_run:
            result.errors += groups.remove_run(dirs)
    return result
