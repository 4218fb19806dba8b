"""A member's round split into phases: "compute" and "exchange", each a measured window.

The engines call :meth:`PhaseMeter.switch` around every computation and every transfer; the
meter closes the current :class:`~edge_agent.sensing.PowerMonitor` window and opens the next,
so each phase's energy is integrated by the member's own power source between exact edges
(``begin_window``/``end_window`` take a sample themselves), and sums the pieces per phase.

"exchange" is the time spent in collectives and point-to-point calls, waiting for peers
included (the pipeline's bubble): a member waiting on the network draws about its idle power,
so its dynamic energy there is small, as the model says.

A source that must not be read faster than ``min_period_s`` (the Pi 5's PMIC: ~23 ms a
read) is switched at most that often: a phase shorter than that stays in the window already
open, and :attr:`PhaseMeter.merged_s` says how much time was attributed that way. The time of
each phase (``seconds``) and this process's CPU time in it (``cpu_seconds``, every thread)
are always exact; bytes are counted by the caller.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from edge_agent.sensing import PowerMonitor, WindowResult

COMPUTE = "compute"
EXCHANGE = "exchange"
PHASES = (COMPUTE, EXCHANGE)
#: Monitor window names: distinct from the daemon's own "compute" window, which is open
#: on the leader while the pool trains.
WINDOW_PREFIX = "pool-"


@dataclass
class PhaseTotals:
    """Sums over a phase's windows (energies J, duration s; frequency time-weighted Hz)."""

    name: str
    energy_j: float = 0.0
    dynamic_energy_j: float = 0.0
    duration_s: float = 0.0
    samples: int = 0
    peak_power_w: float = 0.0
    freq_area: float = 0.0
    freq_time: float = 0.0
    source: str = ""
    scope: str = ""
    estimated: bool = False
    idle_power_w: Optional[float] = None
    dynamic_known: bool = True

    def add(self, w: WindowResult) -> None:
        self.energy_j += w.energy_j
        if w.dynamic_energy_j is None:
            self.dynamic_known = False
        else:
            self.dynamic_energy_j += w.dynamic_energy_j
        self.duration_s += w.duration_s
        self.samples += w.samples
        self.peak_power_w = max(self.peak_power_w, w.peak_power_w)
        if w.mean_freq_hz:
            self.freq_area += w.mean_freq_hz * w.duration_s
            self.freq_time += w.duration_s
        self.source, self.scope, self.estimated = w.source, w.scope, w.estimated
        self.idle_power_w = w.idle_power_w

    def result(self) -> WindowResult:
        mean = self.energy_j / self.duration_s if self.duration_s > 0 else 0.0
        return WindowResult(
            name=self.name,
            energy_j=self.energy_j,
            dynamic_energy_j=self.dynamic_energy_j if self.dynamic_known else None,
            duration_s=self.duration_s,
            mean_power_w=mean,
            peak_power_w=self.peak_power_w,
            samples=self.samples,
            mean_freq_hz=self.freq_area / self.freq_time if self.freq_time > 0 else None,
            source=self.source,
            scope=self.scope,
            estimated=self.estimated,
            idle_power_w=self.idle_power_w,
        )


@dataclass
class PhaseMeter:
    """Phases of one member's round; ``monitor`` None measures times and bytes only."""

    monitor: Optional[PowerMonitor] = None
    clock: object = field(default=time.monotonic, repr=False)
    cpu_clock: object = field(default=time.process_time, repr=False)
    bytes_sent: int = 0
    bytes_received: int = 0
    merged_s: float = 0.0

    def __post_init__(self) -> None:
        self._phase: Optional[str] = None
        self._window: Optional[str] = None
        self._window_t0 = 0.0
        self._phase_t0 = 0.0
        self.seconds: Dict[str, float] = {p: 0.0 for p in PHASES}
        self.cpu_seconds: Dict[str, float] = {p: 0.0 for p in PHASES}
        self._cpu_t0 = 0.0
        self._totals: Dict[str, PhaseTotals] = {p: PhaseTotals(p) for p in PHASES}
        src = self.monitor.source if self.monitor is not None else None
        self.min_switch_s = float(getattr(src, "min_period_s", 0.0) or 0.0)

    def _now(self) -> float:
        return float(self.clock())  # type: ignore[operator]

    def switch(self, phase: str) -> None:
        """Enter ``phase`` (one of :data:`PHASES`) now."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}")
        now = self._now()
        self._account(now)
        self._phase, self._phase_t0 = phase, now
        self._cpu_t0 = float(self.cpu_clock())  # type: ignore[operator]
        if self.monitor is None or self._window == phase:
            return
        if self._window is not None:
            if now - self._window_t0 < self.min_switch_s:
                return  # too soon for this source: the time stays in the open window
            self._close_window()
        self.monitor.begin_window(WINDOW_PREFIX + phase)
        self._window, self._window_t0 = phase, self._now()

    def _account(self, now: float) -> None:
        if self._phase is None:
            return
        dt = now - self._phase_t0
        self.seconds[self._phase] += dt
        self.cpu_seconds[self._phase] += float(self.cpu_clock()) - self._cpu_t0  # type: ignore[operator]
        if self.monitor is not None and self._window != self._phase:
            self.merged_s += dt

    def _close_window(self) -> None:
        assert self.monitor is not None and self._window is not None
        w = self.monitor.end_window(WINDOW_PREFIX + self._window)
        self._totals[self._window].add(w)
        self._window = None

    def stop(self) -> None:
        """End the current phase (and window); safe to call twice."""
        self._account(self._now())
        self._phase = None
        if self._window is not None:
            self._close_window()

    def windows(self) -> List[WindowResult]:
        """The phases as windows (measured), empty without a monitor."""
        if self.monitor is None:
            return []
        return [self._totals[p].result() for p in PHASES if self._totals[p].duration_s > 0]

    def sent(self, nbytes: int) -> None:
        self.bytes_sent += int(nbytes)

    def received(self, nbytes: int) -> None:
        self.bytes_received += int(nbytes)
