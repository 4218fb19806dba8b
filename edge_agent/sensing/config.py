"""Configuration of the sensing layer (loaded by the entry point, passed down).

Fields use ``typing`` generics, not ``list[...]``/``X | None``: ``greenfed.config`` resolves
them with ``typing.get_type_hints`` and the boards run Python 3.8.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from greenfed.config import ConfigError, from_mapping, read_toml

from .registry import FALLBACK, SOURCES
from .utilisation import UTILISATION_MODES

#: Order in which :func:`edge_agent.sensing.detect_power_source` tries the sources.
DEFAULT_SOURCE_ORDER: List[str] = list(SOURCES)


@dataclass
class Ina2xxConfig:
    """An INA219/INA226 wired on I2C (Raspberry Pi 4 and others).

    ``bus``: the N of ``/dev/i2c-N``; ``address``: 7-bit I2C address (0x40 typical);
    ``shunt_ohm``: the shunt resistor in ohms; ``scope``: what the shunt is wired to.
    """

    chip: str = "ina219"  # "ina219" | "ina226"
    bus: int = 1
    address: int = 0x40
    shunt_ohm: float = 0.1
    scope: str = "board input (as wired)"


@dataclass
class EmulatedBoardConfig:
    """This agent is an emulated board (docs/emulated.md), as a local run set it up.

    ``profile``: a board profile (``greenfed.boards.PROFILES``: rpi4, rpi5, orin-nano-cpu,
    jetson-nano-cpu); ``cpu_share``: host CPUs the board gets at its top step; ``cgroup``: the
    directory of its cgroup that holds the CPU quota (its clock) and, on cgroup v2, its CPU
    time (its power); ``cgroup_acct``: cgroup v1's cpuacct directory when that hierarchy is
    separate ("": the same); ``period_us``: the CFS period the quota is written with.
    """

    profile: str = ""
    cpu_share: float = 0.0
    cgroup: str = ""
    cgroup_acct: str = ""
    period_us: int = 50_000

    def __post_init__(self) -> None:
        from greenfed.boards import get_profile

        get_profile(self.profile)  # ConfigError naming the known profiles
        if not self.cpu_share > 0:
            raise ValueError(f"emulated.cpu_share must be > 0 (host CPUs), got {self.cpu_share}")
        if not self.cgroup:
            raise ValueError("emulated.cgroup is required: the board's cgroup directory")
        if not 1000 <= self.period_us <= 1_000_000:
            raise ValueError("emulated.period_us must be in 1000..1000000")


@dataclass
class SensingConfig:
    """How the agent measures power and the compute clock (CPU, or the GPU under CUDA).

    ``source``: ``"auto"`` (try :data:`DEFAULT_SOURCE_ORDER`, then ``estimated``) or one
    name from that list or ``"estimated"``. ``rate_hz``: sampler rate; each source may
    impose a longer minimum period (jtop ≥ 0.5 s, vcgencmd ≤ 10 Hz). ``board_class``:
    ``"auto"`` (from ``/proc/device-tree/model``) or one of the estimated model's classes.
    ``idle_power_w``: subtracted for dynamic energy when no calibration profile is given.
    ``radio_power_w``: the estimated model's extra power while a ``communicate`` window is
    open (None: the board class default). ``utilisation``: what the estimated model counts as
    busy: ``process`` (this agent's process tree, default) or ``system`` (all CPUs).
    ``emulated``: set when this agent is an emulated board (its profile and cgroup); its
    clock and power then come from that board (docs/emulated.md).
    """

    source: str = "auto"
    sources: List[str] = field(default_factory=lambda: list(DEFAULT_SOURCE_ORDER))
    rate_hz: float = 10.0
    sample_freq: bool = True
    board_class: str = "auto"
    idle_power_w: Optional[float] = None
    radio_power_w: Optional[float] = None
    utilisation: str = "process"
    ina2xx: Optional[Ina2xxConfig] = None
    emulated: Optional[EmulatedBoardConfig] = None
    jtop_interval_s: float = 0.5
    vcgencmd: str = "vcgencmd"
    command_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        if self.rate_hz <= 0:
            raise ValueError(f"rate_hz must be > 0, got {self.rate_hz}")
        known = ["auto", FALLBACK[0], *DEFAULT_SOURCE_ORDER]
        if self.source not in known:
            raise ValueError(f"unknown source {self.source!r}; known: {', '.join(known)}")
        if self.utilisation not in UTILISATION_MODES:
            raise ValueError(
                f"utilisation must be one of {', '.join(UTILISATION_MODES)}, "
                f"got {self.utilisation!r}"
            )
        if self.jtop_interval_s < 0.5:
            raise ValueError("jtop_interval_s must be >= 0.5 (jtop's own minimum)")


def sensing_table(raw: Dict[str, Any]) -> Dict[str, Any]:
    """The sensing keys of a TOML file: a sensing-only file, or an agent config's [sensing].

    A file with sensing keys at its top level is a sensing-only file (unknown keys in it are
    then reported). Any other file is an agent config: its other keys are the agent's, not ours.
    """
    own = {f.name for f in dataclasses.fields(SensingConfig)}
    top = set(raw) & own
    if not top:
        table = raw.get("sensing", {})
        if not isinstance(table, dict):
            raise ConfigError(f"sensing: expected a table, got {type(table).__name__}")
        return dict(table)
    if "sensing" in raw:
        raise ConfigError(
            f"sensing keys both at the top level ({', '.join(sorted(top))}) and in [sensing]"
        )
    return dict(raw)


def load_sensing_config(
    path: Optional[Path] = None, overrides: Optional[Mapping[str, Any]] = None
) -> SensingConfig:
    """A SensingConfig from a TOML file (sensing-only or an agent config) and overrides
    (None values are ignored); :class:`ConfigError` names the offending key."""
    data: Dict[str, Any] = sensing_table(read_toml(path)) if path is not None else {}
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return from_mapping(SensingConfig, data, prefix="sensing.")
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(f"sensing: {e}") from e
