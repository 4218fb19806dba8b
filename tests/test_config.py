from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import pytest

from greenfed.config import ConfigError, load_dataclass


@dataclass
class Inner:
    rate_hz: float = 10.0


@dataclass
class Outer:
    name: str = "a"
    count: int = 1
    ratio: Optional[float] = None
    tags: List[str] = field(default_factory=list)
    inner: Inner = field(default_factory=Inner)


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_defaults_and_nested(tmp_path: Path) -> None:
    cfg = load_dataclass(Outer, write(tmp_path, 'name = "b"\n[inner]\nrate_hz = 5\n'))
    assert cfg == Outer(name="b", inner=Inner(rate_hz=5.0))


def test_override_wins_over_file(tmp_path: Path) -> None:
    cfg = load_dataclass(
        Outer, write(tmp_path, "count = 3\n"), {"count": 7, "inner.rate_hz": 2.5, "name": None}
    )
    assert (cfg.count, cfg.inner.rate_hz, cfg.name) == (7, 2.5, "a")


@pytest.mark.parametrize(
    "text, message",
    [
        ("cuont = 3\n", "unknown key cuont"),
        ("[inner]\nrate = 1\n", "unknown key inner.rate"),
        ('count = "3"\n', "count: expected an integer"),
        ("tags = 3\n", "tags: expected a list"),
        ("inner = 3\n", "inner: expected a table"),
        ("count = \n", "invalid TOML"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_dataclass(Outer, write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_dataclass(Outer, tmp_path / "nope.toml")
