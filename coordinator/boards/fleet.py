"""An emulated fleet's make-up: which board each device is, and how much host CPU each gets.

A device's board is a profile name (``greenfed.boards.PROFILES``); ``--board`` options are
cycled over the devices like ``--link`` ones. Without them the **mixed** fleet is used: a slow
board (Pi 4) and two fast ones (Orin Nano CPU, Pi 5), cycled as below, so that with the local
runs' uplinks of 2/5/10/20 Mbit/s the fleet has slow and fast boards on slow and fast links:

    board-1 rpi4 @ 2 Mbit/s   board-2 orin-nano-cpu @ 5   board-3 rpi5 @ 10   board-4 rpi4 @ 20

Host CPU: a board of relative speed s gets s × ``cpu_per_unit`` host CPUs at its top step. The
default unit, 0.2 CPU per Pi 4, compresses time: a real Pi 4 trains this project's DDPM 10-25x
slower than one core of a laptop-class x86 CPU (DESIGN.md §5), the emulated one about 5x, so a
round takes seconds, not minutes; the boards' ratios are kept. A fleet whose quotas would
together exceed ``cpus_budget`` (default 60 % of this machine's CPUs) gets a smaller unit and
the note says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Sequence

from coordinator.boards.errors import FleetSpecError
from greenfed.boards import BoardProfile, get_profile
from greenfed.errors import ConfigError

MIXED_BOARDS = ("rpi4", "orin-nano-cpu", "rpi5", "rpi4")
DEFAULT_CPU_PER_UNIT = 0.2
BUDGET_SHARE = 0.6  # of this machine's CPUs, for the whole fleet at its top steps


def parse_board(text: str) -> BoardProfile:
    """A ``--board`` value: a profile name."""
    try:
        return get_profile(text.strip())
    except ConfigError as e:
        raise FleetSpecError(str(e)) from e


def fleet_boards(n: int, given: Sequence[str] = ()) -> List[BoardProfile]:
    """Device i's board: ``given`` cycled over ``n`` devices, else the mixed fleet."""
    names = list(given) or list(MIXED_BOARDS)
    return [parse_board(names[i % len(names)]) for i in range(n)]


def default_budget() -> float:
    return BUDGET_SHARE * float(os.cpu_count() or 1)


@dataclass(frozen=True)
class FleetScale:
    """Host CPUs per unit of relative speed, and why it is what it is."""

    cpu_per_unit: float
    budget_cpus: float
    note: str = ""

    def cpus(self, profile: BoardProfile) -> float:
        """Host CPUs ``profile``'s board gets at its top step."""
        return profile.relative_speed * self.cpu_per_unit


def fleet_scale(
    boards: Sequence[BoardProfile],
    cpu_per_unit: float = DEFAULT_CPU_PER_UNIT,
    budget_cpus: Optional[float] = None,
) -> FleetScale:
    """The unit for ``boards``: ``cpu_per_unit``, lowered so they fit ``budget_cpus``."""
    budget = default_budget() if budget_cpus is None else float(budget_cpus)
    if cpu_per_unit <= 0 or budget <= 0:
        raise FleetSpecError("--board-cpus and the CPU unit must be > 0")
    speed = sum(b.relative_speed for b in boards)
    if speed * cpu_per_unit <= budget * (1 + 1e-9):  # 6 x 0.2 is 1.2000000000000002
        return FleetScale(cpu_per_unit, budget)
    unit = budget / speed
    return FleetScale(
        unit,
        budget,
        f"the fleet at {cpu_per_unit:g} CPU per Pi 4 would need {speed * cpu_per_unit:.2f} host "
        f"CPUs; scaled to {unit:.3f} to fit {budget:.2f}",
    )
