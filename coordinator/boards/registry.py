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

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, List

from coordinator.boards import groups
from coordinator.links.registry import OwnedRecord, orphaned

REGISTRY_DIR = Path("/run/greenfed/boards")
ORPHAN_MIN_AGE_S = 60.0  # an unclaimed group younger than this may be a run starting up


@dataclass
class BoardRecord(OwnedRecord):
    folder: ClassVar[Path] = REGISTRY_DIR
    directories: List[str] = field(default_factory=list)  # the run's cgroup directories


def records() -> List[BoardRecord]:
    return BoardRecord.load_all()


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
    recs = records()
    claimed = {rec.prefix for rec in recs}
    for rec in orphaned(recs, everything, result.kept):
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
