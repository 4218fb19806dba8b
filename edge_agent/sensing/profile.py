"""The calibration profile: a device's measured coefficients, saved as JSON with provenance.

Written by ``greenfed-agent calibrate`` (or the agent's quick calibration), read by ``run``
and sent at registration (units in the field names; κ in W/Hz³).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

from .errors import CalibrationError

PROFILE_VERSION = 1

#: The reference clock of a device whose clock cannot be read (a unit, not a reading).
NOMINAL_CLOCK_HZ = 1.0e9


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class KappaPoint:
    """One frequency step: measured frequency (Hz) and dynamic power (W)."""

    freq_hz: float
    dynamic_power_w: float
    mean_power_w: float
    duration_s: float
    samples: int
    train_samples: int


@dataclass
class CalibrationProfile:
    """Measured coefficients of one device (units in the names; κ in W/Hz³)."""

    idle_power_w: float
    kappa: Optional[float]
    cycles_per_sample: Optional[float]
    uplink_bytes_per_s: Optional[float]
    energy_per_byte_j: Optional[float]
    f_min_hz: Optional[float]
    f_max_hz: Optional[float]
    f_steps_hz: List[float]
    source: str
    scope: str
    estimated: bool
    created_at: str = field(default_factory=now_iso)
    started_at: str = ""
    kappa_single_point: bool = False
    kappa_points: List[KappaPoint] = field(default_factory=list)
    dvfs: str = ""
    workload: str = ""
    uplink_target: str = ""
    uplink_bytes: int = 0
    idle_duration_s: float = 0.0
    notes: List[str] = field(default_factory=list)
    clock: str = ""  # "sysfs", "psutil", "gpu-devfreq", or "nominal" (unreadable: the reference)
    device: str = ""  # torch device the workload ran on: "cpu", "cuda" ("" = cpu, older files)
    version: int = PROFILE_VERSION

    @property
    def train_device(self) -> str:
        """The device this profile's κ and cycles per sample hold for."""
        return self.device or "cpu"

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def save(self, path: Path) -> None:
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        try:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
            os.replace(tmp, path)
        except OSError as e:
            raise CalibrationError(f"cannot write profile {path}: {e}") from e

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> CalibrationProfile:
        d = dict(data)
        d["kappa_points"] = [KappaPoint(**p) for p in d.get("kappa_points", [])]
        try:
            return cls(**d)
        except TypeError as e:
            raise CalibrationError(f"not a calibration profile: {e}") from e

    @classmethod
    def load(cls, path: Path) -> CalibrationProfile:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as e:
            raise CalibrationError(f"cannot read profile {path}: {e}") from e
