"""The power of an emulated board: its profile's model at its clock, driven by its own CPU time.

Between two readings the board's process tree used Δcpu seconds of host CPU (its cgroup's
accounting: ``cpuacct.usage`` on cgroup v1, ``cpu.stat usage_usec`` on v2). At clock f the
board may use cpus(f) = cpu_share × f / f_max host CPUs, so it was busy
u = Δcpu / (cpus(f) × Δt) of the time, and the profile's model (greenfed/boards/profiles.py)
gives

    E += P_idle·Δt + κ f³ · Δcpu / cpus(f)  (+ P_radio·Δt while a "communicate" window is open)

a cumulative energy counter (like RAPL's), so a window's energy is exact however the CFS
bandwidth periods fall between samples. The energy of a piece of work is then κ f² × its
cycles, whatever else runs on the machine: another agent's load, or a neighbour's, never
shows up in this board's joules (it only makes the board wait, which costs idle power).

Every record says ``estimated`` and, in the scope, ``emulated board <profile>``: the joules
come from a model, the timing from the real kernel quota.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Dict, Optional

from .base import PowerReading, PowerSource, SourceContext
from .emulated_clock import BoardCgroup
from .errors import SourceUnavailable

COMMUNICATE = "communicate"


class EmulatedBoardSource(PowerSource):
    """Power of an emulated board (module docstring); ``estimated`` is True."""

    name = "emulated-board"
    estimated = True

    def __init__(
        self,
        board: BoardCgroup,
        period_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        p = board.profile
        super().__init__(
            scope=(
                f"emulated board {p.name} ({p.describe()}; busy share from its cgroup's CPU "
                f"time; +{p.radio_w:g} W radio while communicating)"
            ),
            sample_period_s=period_s,
        )
        self.board = board
        self._clock = clock
        self._communicating = 0
        self._energy_j = 0.0
        self._last: Optional[tuple] = None  # (t, cpu seconds, energy)

    @classmethod
    def open(cls, ctx: SourceContext) -> EmulatedBoardSource:
        cfg = ctx.cfg.emulated
        if cfg is None:
            raise SourceUnavailable(
                "not an emulated board (no [sensing.emulated]: local runs with --boards write it)"
            )
        return cls(BoardCgroup.open(cfg, Path(ctx.sysfs_root)), 1.0 / ctx.cfg.rate_hz)

    def read(self) -> PowerReading:
        now, cpu = self._clock(), self.board.usage_s()
        if self._last is None:
            self._last = (now, cpu, 0.0)
            return PowerReading(self.board.profile.idle_w, energy_j=0.0, t=now)
        t0, cpu0, e0 = self._last
        dt = max(0.0, now - t0)
        f = self.board.clock_hz()
        p = self.board.profile
        dyn_j = p.kappa * f**3 * max(0.0, cpu - cpu0) / self.board.cpus_at(f)
        radio_j = p.radio_w * dt if self._communicating else 0.0
        self._energy_j = e0 + p.idle_w * dt + dyn_j + radio_j
        self._last = (now, cpu, self._energy_j)
        power = (self._energy_j - e0) / dt if dt > 0 else p.idle_w
        return PowerReading(power, energy_j=self._energy_j, t=now)

    def window_event(self, name: str, opened: bool) -> None:
        if name == COMMUNICATE:
            self._communicating = max(0, self._communicating + (1 if opened else -1))

    @property
    def model_idle_power_w(self) -> Optional[float]:
        return self.board.profile.idle_w

    @property
    def board_class(self) -> str:
        return f"emulated board {self.board.profile.name}"

    def describe(self) -> Dict[str, object]:
        d = super().describe()
        p = self.board.profile
        d.update(
            board_class=self.board_class,
            idle_w=p.idle_w,
            peak_w=p.peak_w,
            radio_w=p.radio_w,
            kappa=p.kappa,
            cpu_share=self.board.cpu_share,
            cgroup=str(self.board.group.cpu_dir),
            basis=p.basis,
        )
        return d
