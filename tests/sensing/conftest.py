from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, List

import pytest

from edge_agent.sensing import PowerReading, PowerSource, Probe, SourceContext

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def tree(tmp_path: Path) -> Callable[[str], Path]:
    """A writable copy of a fixture tree."""

    def copy(name: str) -> Path:
        dst = tmp_path / name
        shutil.copytree(FIXTURES / name, dst)
        return dst

    return copy


class FakeClock:
    """Deterministic monotonic clock."""

    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


class ScriptedSource(PowerSource):
    """A source returning scripted powers (W); the last value repeats."""

    name = "scripted"

    def __init__(self, powers: List[float], scope: str = "test rail") -> None:
        super().__init__(scope=scope, sample_period_s=0.1)
        self.powers = list(powers)
        self.reads = 0

    @classmethod
    def probe(cls, ctx: SourceContext) -> Probe:
        return Probe(cls.name, True)

    @classmethod
    def open(cls, ctx: SourceContext) -> ScriptedSource:
        return cls([1.0])

    def read(self) -> PowerReading:
        p = self.powers[min(self.reads, len(self.powers) - 1)]
        self.reads += 1
        return PowerReading(power_w=p)
