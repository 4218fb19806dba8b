"""Power of one pool member when several members share one machine (tests, ``pool-study``).

On a real pool every member is its own board with its own sensor. When members are
processes of one host, the host's sensor (or the whole-machine ``estimated`` model) would
count every member's work in every member's figure. This source is the ``estimated`` model of
:mod:`edge_agent.sensing.estimated` applied to one process: each member is a board of the
host's class, drawing its idle power plus ``(P_max - P_idle) / cores`` per second of CPU time
its process uses (every thread, gloo's included). It keeps a cumulative energy counter, so a
window's energy is exact under the model however short the window::

    E(t) = P_idle * (t - t0) + (P_max - P_idle) / cores * (cpu_s(t) - cpu_s(t0))

Every record says ``estimated`` and the scope names the model and the sharing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Dict, Optional

from edge_agent.sensing import (
    BOARD_CLASSES,
    EstimatedSource,
    PowerReading,
    SensingConfig,
    detect_board_class,
)
from edge_agent.sensing.base import SourceContext
from edge_agent.sensing.estimated import BoardClass


class ProcessShareSource(EstimatedSource):
    """The estimated model over this process's CPU time (see the module docstring)."""

    name = "estimated-process"

    def __init__(
        self,
        board: BoardClass,
        cores: int,
        period_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        cpu_time: Callable[[], float] = time.process_time,
    ) -> None:
        super().__init__(board, period_s, radio_w=0.0)
        self.cores = max(1, int(cores))
        self.scope = (
            f"estimated: this member process's CPU time on a {board.name} model "
            f"({board.idle_w} W idle, {board.max_w} W with {self.cores} cores busy); "
            "members share this host"
        )
        self._clock = clock
        self._cpu_time = cpu_time
        self._t0 = clock()
        self._c0 = cpu_time()
        self._last_t = self._t0
        self._last_e = 0.0

    @classmethod
    def open(
        cls, ctx: SourceContext, reasons: Optional[Dict[str, str]] = None
    ) -> ProcessShareSource:
        return cls.for_host(ctx.cfg, 0, ctx.sysfs_root)

    @classmethod
    def for_host(
        cls, cfg: SensingConfig, cores: int = 0, sysfs_root: Path = Path("/")
    ) -> ProcessShareSource:
        """This host's board class (as the estimated model detects it) with ``cores``
        cores (0: ``os.cpu_count()``)."""
        board = BOARD_CLASSES[detect_board_class(sysfs_root, cfg.board_class)]
        return cls(board, cores or os.cpu_count() or 1, 1.0 / cfg.rate_hz)

    def energy_j(self) -> float:
        dyn = (self.board.max_w - self.board.idle_w) / self.cores
        return self.board.idle_w * (self._clock() - self._t0) + dyn * (self._cpu_time() - self._c0)

    def read(self) -> PowerReading:
        t, e = self._clock(), self.energy_j()
        dt = t - self._last_t
        power = (e - self._last_e) / dt if dt > 0 else self.board.idle_w
        self._last_t, self._last_e = t, e
        return PowerReading(power_w=power, energy_j=e)

    def describe(self) -> Dict[str, object]:
        d = super().describe()
        d.update(cores=self.cores)
        return d
