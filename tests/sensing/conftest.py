from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any, Callable, List

import pytest

from edge_agent.sensing import PowerReading, PowerSource, Probe, SourceContext
from edge_agent.sensing import sysfs as sysfs_mod

FIXTURES = Path(__file__).parent / "fixtures"


def errno_rules(name: str) -> List[tuple]:
    """``<name>.errno`` beside a tree: ``ERRNO relative/path/prefix`` lines, the errors the
    real board's kernel answers for those files (a copied tree cannot hold an errno)."""
    manifest = FIXTURES / f"{name}.errno"
    if not manifest.exists():
        return []
    rules = []
    for line in manifest.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            code, prefix = line.split(None, 1)
            rules.append((getattr(errno, code), prefix.strip()))
    return rules


def install_errno_seam(monkeypatch: pytest.MonkeyPatch, root: Path, errnos: List[tuple]) -> None:
    """Make the one file-opening seam of the sensing layer answer the board's errnos."""
    rules = [(code, str(root / prefix)) for code, prefix in errnos]
    if not rules:
        return
    real_open = sysfs_mod._open

    def board_open(path: Any, mode: str = "r", *args: Any, **kw: Any) -> Any:
        for code, prefix in rules:
            if str(path).startswith(prefix):
                raise OSError(code, os.strerror(code), str(path))
        return real_open(path, mode, *args, **kw)

    monkeypatch.setattr(sysfs_mod, "_open", board_open)


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """A writable copy of a fixture tree, reading as the real board does (errno manifest)."""

    def copy(name: str) -> Path:
        dst = tmp_path / name
        shutil.copytree(FIXTURES / name, dst)
        install_errno_seam(monkeypatch, dst, errno_rules(name))
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
