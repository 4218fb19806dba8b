"""How busy the estimated model thinks the board is: this agent's own work, or the whole machine.

The estimated model (estimated.py) turns a busy fraction u into power. Two readers, chosen by
``SensingConfig.utilisation``:

- ``process`` (default): the CPU time of this agent's process tree (itself, its live children
  and the children it has reaped, from psutil) per wall second, over the machine's CPUs. On a
  machine shared with other work (several agents on one laptop, a neighbour's job) each agent
  then counts its own joules, not the machine's: four co-located agents no longer count the
  same load four times, and a neighbour's load does not show up as a device's compute energy.
- ``system``: the busy fraction of all CPUs (``psutil.cpu_times()``), what a dedicated board
  burns whatever runs on it.

Each reader keeps its own previous totals, so other callers of psutil's ``cpu_percent`` cannot
disturb them, and names itself in :attr:`label` (the power source's scope repeats it, so every
record says which one it used).
"""

from __future__ import annotations

import os
import time
from typing import Callable, Optional, Tuple

#: ``SensingConfig.utilisation`` values.
UTILISATION_MODES = ("process", "system")


class SystemUtilisation:
    """Busy fraction of all CPUs between successive calls, from ``psutil.cpu_times()``."""

    label = "all CPUs of the machine (psutil.cpu_times)"

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._last = self._totals()

    def _totals(self) -> Tuple[float, float]:
        t = self._psutil.cpu_times()
        idle = t.idle + getattr(t, "iowait", 0.0)
        return sum(t) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0), idle

    def __call__(self) -> float:
        total, idle = self._totals()
        dt, di = total - self._last[0], idle - self._last[1]
        self._last = (total, idle)
        if dt <= 0:
            return 0.0
        return min(1.0, max(0.0, 1.0 - di / dt))


class ProcessTreeUtilisation:
    """CPU time of this process and its children per wall second, over the machine's CPUs."""

    label = "this agent's process tree (psutil)"

    def __init__(
        self,
        pid: Optional[int] = None,
        clock: Callable[[], float] = time.monotonic,
        cpus: Optional[int] = None,
    ) -> None:
        import psutil

        self._psutil = psutil
        self._proc = psutil.Process(pid if pid is not None else os.getpid())
        self._clock = clock
        self._cpus = max(1, cpus or psutil.cpu_count() or 1)
        self._last = (self._clock(), self.cpu_seconds())

    def cpu_seconds(self) -> float:
        """User + system seconds of the tree: the process (with the children it reaped) and
        every live descendant. A child that exits between two calls drops out until it is
        reaped, so a busy-fraction dip of one sample is possible, never a negative one."""
        t = self._proc.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in self._proc.children(recursive=True):
            try:
                c = child.cpu_times()
            except (self._psutil.NoSuchProcess, self._psutil.AccessDenied):
                continue
            total += c.user + c.system
        return total

    def __call__(self) -> float:
        now, cpu = self._clock(), self.cpu_seconds()
        dt, dc = now - self._last[0], cpu - self._last[1]
        self._last = (now, cpu)
        if dt <= 0:
            return 0.0
        return min(1.0, max(0.0, dc / dt / self._cpus))


def make_utilisation(mode: str) -> Callable[[], float]:
    """The reader for ``SensingConfig.utilisation`` (``process`` or ``system``)."""
    if mode == "system":
        return SystemUtilisation()
    if mode == "process":
        return ProcessTreeUtilisation()
    raise ValueError(f"utilisation must be one of {', '.join(UTILISATION_MODES)}, not {mode!r}")
