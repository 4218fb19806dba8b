"""Result types of the allocator: :class:`Plan`, :class:`DevicePlan`, :class:`Infeasibility`.

A :class:`Plan` keeps its per-device values as numpy arrays (cheap for 10^5 devices);
:attr:`Plan.devices` builds the per-device records on demand and :meth:`Plan.to_dict` gives the
``plan --json`` document (the stable contract in docs/allocator.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

#: Kinds of :class:`Infeasibility`.
DEADLINE = "deadline"  # a device misses T even at f_top with its lowest bits
ERROR_BUDGET = "error_budget"  # the budget is not met even at every device's highest bits
BITS_RANGE = "bits_range"  # fixed-B only: B outside the device's own [bits_min, bits_max]
ROUNDING = "rounding"  # a check after integer rounding failed (a bug if it ever appears)


@dataclass(frozen=True)
class Infeasibility:
    """One violated constraint: ``value`` against ``limit`` (``excess = value - limit``)."""

    kind: str
    device_id: Optional[str]
    value: float
    limit: float
    unit: str
    message: str

    @property
    def excess(self) -> float:
        return self.value - self.limit

    def to_dict(self) -> Dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.device_id,
            "value": self.value,
            "limit": self.limit,
            "excess": self.excess,
            "unit": self.unit,
            "message": self.message,
        }


@dataclass(frozen=True)
class DevicePlan:
    """One device's assignment and its predicted dynamic energy and round time."""

    id: str
    bits: int
    freq_hz: float
    energy_j: float
    compute_energy_j: float
    comm_energy_j: float
    time_s: float

    def to_dict(self) -> Dict[str, Any]:
        return {
            "id": self.id,
            "bits": self.bits,
            "freq_hz": self.freq_hz,
            "energy_j": self.energy_j,
            "compute_energy_j": self.compute_energy_j,
            "comm_energy_j": self.comm_energy_j,
            "time_s": self.time_s,
        }


@dataclass(frozen=True)
class Plan:
    """The allocation of one scheme for one round.

    ``multiplier`` is the error-budget multiplier mu of the continuous solution (J per unit of
    error; 0 when the lowest bits already meet the budget; None for baselines and infeasible
    plans). ``error`` is the aggregated quantization error bound of the integer bits.
    """

    scheme: str
    feasible: bool
    multiplier: Optional[float]
    error: float
    error_budget: float
    ids: Tuple[str, ...]
    bits: np.ndarray
    freq_hz: np.ndarray
    compute_energy_j: np.ndarray
    comm_energy_j: np.ndarray
    time_s: np.ndarray
    infeasible: List[Infeasibility] = field(default_factory=list)

    @property
    def energy_j(self) -> np.ndarray:
        return self.compute_energy_j + self.comm_energy_j

    @property
    def total_energy_j(self) -> float:
        return float(self.energy_j.sum())

    @property
    def devices(self) -> List[DevicePlan]:
        energy = self.energy_j
        return [
            DevicePlan(
                id=self.ids[i],
                bits=int(self.bits[i]),
                freq_hz=float(self.freq_hz[i]),
                energy_j=float(energy[i]),
                compute_energy_j=float(self.compute_energy_j[i]),
                comm_energy_j=float(self.comm_energy_j[i]),
                time_s=float(self.time_s[i]),
            )
            for i in range(len(self.ids))
        ]

    def to_dict(self) -> Dict[str, Any]:
        """The ``plan --json`` document."""
        return {
            "scheme": self.scheme,
            "feasible": self.feasible,
            "multiplier": self.multiplier,
            "error": self.error,
            "error_budget": self.error_budget,
            "total_energy_j": self.total_energy_j,
            "devices": [d.to_dict() for d in self.devices],
            "infeasible": [i.to_dict() for i in self.infeasible],
        }
