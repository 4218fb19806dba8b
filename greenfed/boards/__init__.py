"""Emulated boards: board profiles and the kernel's CPU controller that turns their clocks.

Shared by both sides: the coordinator's local runs build one cgroup per agent and give it a
profile (coordinator/boards); the agent reads and sets that cgroup as its compute clock and
its power source (edge_agent/sensing/emulated_clock.py, emulated_board.py).

    profiles.py   BoardProfile, PROFILES (figures with their sources), get_profile
    cgroup.py     Hierarchy (cgroup v1 or v2), detect, CpuGroup (quota, CPU time, throttling)

docs/emulated.md says what is emulated and what is not.
"""

from __future__ import annotations

from greenfed.boards.cgroup import (
    CgroupError,
    CgroupUnavailable,
    CpuGroup,
    Hierarchy,
    Throttling,
    detect,
    find_hierarchy,
)
from greenfed.boards.profiles import PROFILES, BoardProfile, get_profile, profile_names

__all__ = [
    "PROFILES",
    "BoardProfile",
    "CgroupError",
    "CgroupUnavailable",
    "CpuGroup",
    "Hierarchy",
    "Throttling",
    "detect",
    "find_hierarchy",
    "get_profile",
    "profile_names",
]
