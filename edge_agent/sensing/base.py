"""The power-source interface every backend implements (Zeus-style: small, one per file).

A backend module exposes one :class:`PowerSource` subclass with a cheap classmethod
``probe(ctx) -> Probe`` (never raises; says why not) and ``open(ctx)`` that builds a
ready instance or raises :class:`~edge_agent.sensing.errors.SourceUnavailable`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional

from .config import SensingConfig
from .errors import SensingError
from .sysfs import CommandRunner


@dataclass
class SourceContext:
    """Everything a backend may touch: the sysfs root, the command runner, the config."""

    cfg: SensingConfig = field(default_factory=SensingConfig)
    sysfs_root: Path = Path("/")
    runner: CommandRunner = field(default_factory=CommandRunner)


@dataclass
class PowerReading:
    """One reading. ``power_w``: instantaneous total over the scope (W).

    ``energy_j``: a cumulative, already unwrapped energy counter (J) for counter sources
    (RAPL), None otherwise. ``rails_w``: per-rail power (W) where the source has rails.
    ``t``: the monotonic time the counter was read at, where the source keeps its own (a
    process whose reads may wait for the CPU, as an emulated board's: the counter then
    belongs to that instant, not to when the monitor got it); None: the monitor's time.
    """

    power_w: float
    energy_j: Optional[float] = None
    rails_w: Dict[str, float] = field(default_factory=dict)
    t: Optional[float] = None


@dataclass
class Probe:
    """Result of a cheap availability probe: ``available`` or the ``reason`` why not."""

    name: str
    available: bool
    reason: str = ""
    detail: Dict[str, object] = field(default_factory=dict)


class PowerSource(abc.ABC):
    """A way to read board power.

    ``name``: backend id; ``scope``: what the number covers, in words; ``sample_period_s``:
    the period this source is sampled at by default; ``min_period_s``: the shortest period
    it tolerates; ``estimated``: True only for the utilisation model; ``gpu_rail``: the rail
    whose energy each window reports beside the total, where the board has one.
    """

    name: str = "abstract"
    estimated: bool = False
    min_period_s: float = 0.0
    #: The key in ``PowerReading.rails_w`` of the rail feeding the GPU (None: none known),
    #: and what that rail covers (a combined CPU/GPU rail says so).
    gpu_rail: Optional[str] = None
    gpu_rail_covers: str = ""

    def __init__(self, scope: str, sample_period_s: float = 0.1) -> None:
        self.scope = scope
        self.sample_period_s = max(sample_period_s, self.min_period_s)

    @classmethod
    def probe(cls, ctx: SourceContext) -> Probe:
        """Cheap check; never raises. By default: open the source and describe it."""
        try:
            src = cls.open(ctx)
        except SensingError as e:
            return Probe(cls.name, False, str(e))
        return Probe(cls.name, True, detail=src.probe_detail())

    def probe_detail(self) -> Dict[str, object]:
        """What ``probe`` reports about an available source."""
        return {"scope": self.scope}

    @classmethod
    @abc.abstractmethod
    def open(cls, ctx: SourceContext) -> PowerSource:
        """A ready source, or :class:`SourceUnavailable` with the reason."""

    @abc.abstractmethod
    def read(self) -> PowerReading:
        """One reading; raises :class:`SensorReadError` on failure."""

    @property
    def model_idle_power_w(self) -> Optional[float]:
        """Idle power a model defines (the estimated source's board constant), W; None for a
        sensor, whose idle power is measured."""
        return None

    @property
    def board_class(self) -> str:
        """The estimated model's board class, "" for a sensor."""
        return ""

    def window_event(self, name: str, opened: bool) -> None:  # noqa: B027 - optional hook
        """Told when a named window opens/closes (the estimated model adds radio power)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release handles (jtop connection, I2C fd)."""

    def describe(self) -> Dict[str, object]:
        return {
            "name": self.name,
            "scope": self.scope,
            "sample_period_s": self.sample_period_s,
            "estimated": self.estimated,
            "gpu_rail": self.gpu_rail,
            "gpu_rail_covers": self.gpu_rail_covers,
        }
