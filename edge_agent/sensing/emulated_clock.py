"""The clock of an emulated board: the kernel's CPU quota of its cgroup, in the profile's steps.

An emulated board (docs/emulated.md) is an agent process tree in its own cgroup with a board
profile (``greenfed.boards``). Its clock is not a clock: at frequency f the cgroup may use

    cpus(f) = cpu_share × f / f_max

host CPUs (``cpu_share``: what the board gets at its top step), so training at half the clock
takes twice as long, as on a board. The agent sees it as any other compute clock
(:class:`~edge_agent.sensing.clock.ComputeClock`): the profile's steps, ``apply`` writes the
quota of the next step ≥ the request, ``restore`` writes back the quota found before the first
clamp (the launcher's: the top step), with the same signal-safe restore guard as cpufreq.
``read`` turns the quota back into the step it stands for (``source`` "emulated").

:class:`BoardCgroup` is the board both this clock and the power source (emulated_board.py)
open from the agent's ``[sensing.emulated]`` table.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from greenfed.boards import BoardProfile, CgroupError, CpuGroup, get_profile

from .clock import ComputeClock, DvfsResult
from .config import EmulatedBoardConfig
from .errors import SensingError, SensorReadError, SourceUnavailable

log = logging.getLogger(__name__)

CLOCK_SOURCE = "emulated"
SNAP_REL = 0.01  # a quota within 1 % of a step's reads as that step (quotas are whole µs)


@dataclass
class BoardCgroup:
    """An emulated board: its profile, its cgroup and the host CPUs it gets at the top step."""

    profile: BoardProfile
    group: CpuGroup
    cpu_share: float
    period_us: int

    @classmethod
    def open(cls, cfg: EmulatedBoardConfig, sysfs_root: Path = Path("/")) -> BoardCgroup:
        """The board of ``cfg`` (paths re-rooted under ``sysfs_root`` for copied trees);
        :class:`SourceUnavailable` says why it cannot be opened."""

        def rooted(path: str) -> Path:
            return Path(sysfs_root) / path.lstrip("/")

        try:
            group = CpuGroup.open(
                rooted(cfg.cgroup), rooted(cfg.cgroup_acct) if cfg.cgroup_acct else None
            )
            group.usage_s()  # readable now, or say why
        except CgroupError as e:
            raise SourceUnavailable(f"emulated board {cfg.profile}: {e}") from e
        return cls(get_profile(cfg.profile), group, cfg.cpu_share, cfg.period_us)

    def cpus_at(self, freq_hz: float) -> float:
        """Host CPUs the board may use at ``freq_hz``."""
        return self.cpu_share * freq_hz / self.profile.f_max_hz

    def clock_hz(self) -> float:
        """The clock the cgroup's quota stands for (Hz): the nearest step when within 1 %,
        the top step when the quota is unlimited. Raises :class:`SensorReadError`."""
        try:
            cpus = self.group.quota_fraction()
        except (CgroupError, ValueError) as e:
            raise SensorReadError(f"emulated board {self.profile.name}: {e}") from e
        if cpus is None:
            return self.profile.f_max_hz
        f = cpus / self.cpu_share * self.profile.f_max_hz
        near = min(self.profile.steps_hz, key=lambda s: abs(s - f))
        return near if abs(near - f) <= SNAP_REL * near else f

    def usage_s(self) -> float:
        """CPU seconds the board's process tree used (its cgroup's accounting)."""
        try:
            return self.group.usage_s()
        except CgroupError as e:
            raise SensorReadError(f"emulated board {self.profile.name}: {e}") from e


@dataclass
class EmulatedReading:
    """``freq_hz``: the clock the quota stands for; ``source``: "emulated"."""

    freq_hz: Optional[float]
    source: str = CLOCK_SOURCE


class EmulatedClock(ComputeClock):
    """The compute clock of an emulated board (see the module docstring)."""

    name = "emulated-board"
    clamp_note = "set the cgroup's CPU quota (emulated clock)"

    def __init__(self, board: BoardCgroup) -> None:
        super().__init__()
        self.board = board
        self._saved: Optional[Tuple[Optional[int], int]] = None

    @classmethod
    def from_config(cls, cfg: EmulatedBoardConfig, sysfs_root: Path = Path("/")) -> EmulatedClock:
        return cls(BoardCgroup.open(cfg, sysfs_root))

    def read(self) -> EmulatedReading:
        return EmulatedReading(self.board.clock_hz())

    @property
    def steps_hz(self) -> List[float]:
        return list(self.board.profile.steps_hz)

    @property
    def min_hz(self) -> Optional[float]:
        return self.board.profile.f_min_hz

    @property
    def max_hz(self) -> Optional[float]:
        return self.board.profile.f_max_hz

    def dvfs_status(self) -> DvfsResult:
        quota = self.board.group.quota_file
        if not os.access(quota, os.W_OK):
            who = "not root" if os.geteuid() != 0 else "read-only"
            return DvfsResult(False, f"{quota} not writable: {who}")
        return DvfsResult(True, "cgroup CPU quota writable (emulated clock)")

    def _clamp_locked(self, freq_hz: float) -> Optional[float]:
        above = [s for s in self.board.profile.steps_hz if s >= freq_hz - 0.5]
        target = above[0] if above else self.board.profile.f_max_hz  # next step up, as cpufreq
        try:
            if self._saved is None:
                self._saved = self.board.group.limits_us()
            self.board.group.set_fraction(self.board.cpus_at(target), self.board.period_us)
        except CgroupError as e:
            raise SensingError(str(e)) from e
        return target

    def _restore_locked(self) -> None:
        if self._saved is None:
            return
        try:
            self.board.group.set_limits_us(*self._saved)
            self._saved = None
        except CgroupError as e:
            log.error("could not restore the emulated board's CPU quota: %s", e)

    @property
    def clamped(self) -> bool:
        return self._saved is not None
