"""Emulated boards for local runs: each agent in its own cgroup, its clock the CPU quota.

Pieces (one responsibility each)::

    fleet.py      which board each device is (--board, the mixed default), host CPUs per board
    emulated.py   BoardSet: the boards of one run (attach, close); boards_for_run (fallback)
    groups.py     the kernel side: create/remove cgroups (v1 or v2), start a process inside one
    registry.py   which run owns which cgroups; cleanup after a SIGKILL

The profiles and the CPU controller's files live in ``greenfed.boards`` (the agent reads them
too). Records say ``emulated board <profile>`` (the power source's scope and the device's
board); docs/emulated.md says what is emulated and what is not.

Errors::

    BoardError
    ├── FleetSpecError       (also a ValueError) an unknown profile, a bad budget
    └── BoardsUnavailable    not root / no CPU controller; ``reason`` says which
"""

from __future__ import annotations

from coordinator.boards.emulated import MODES, AgentBoard, BoardSet, boards_for_run
from coordinator.boards.errors import BoardError, BoardsUnavailable, FleetSpecError
from coordinator.boards.fleet import (
    MIXED_BOARDS,
    FleetScale,
    fleet_boards,
    fleet_scale,
    parse_board,
)

__all__ = [
    "MIXED_BOARDS",
    "MODES",
    "AgentBoard",
    "BoardError",
    "BoardSet",
    "BoardsUnavailable",
    "FleetScale",
    "FleetSpecError",
    "boards_for_run",
    "fleet_boards",
    "fleet_scale",
    "parse_board",
]
