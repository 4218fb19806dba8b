"""The fleet description: :class:`DeviceCoeffs`, :class:`Fleet`, and validation of FLEET.json.

:func:`parse_fleet` turns an already-decoded JSON object into a :class:`Fleet`, rejecting
malformed or physically impossible values with a :class:`FleetError` whose message starts with
the field path (``devices[2].f_min_hz: must be <= f_max_hz``). Reading the file is the caller's
job (``coordinator.commands.plan``): this module does no I/O.

Format (docs/allocator.md)::

    {"params": d, "deadline_s": T, "error_budget": eps,
     "header_bytes": h (optional), "tensors": n (optional, default 1), "comment": "..." (optional),
     "devices": [{"id", "kappa", "cycles", "f_min_hz", "f_max_hz", "f_steps_hz" (optional),
                  "uplink_bytes_per_s", "energy_per_byte_j", "weight_range", "samples",
                  "bits_min", "bits_max"}]}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .errors import FleetError
from .model import FleetArrays, default_header_bytes

BITS_LOWEST = 1
BITS_HIGHEST = 16


@dataclass(frozen=True)
class DeviceCoeffs:
    """One device's measured coefficients (units in the names; see DESIGN.md §2)."""

    id: str
    kappa: float  # effective switched capacitance, dynamic power = kappa * f**3
    cycles: float  # compute-clock cycles of one round, C_k (CPU's, or GPU's under CUDA)
    f_min_hz: float
    f_max_hz: float
    uplink_bytes_per_s: float
    energy_per_byte_j: float
    weight_range: float  # range R_k of the update to quantize
    samples: float  # training samples D_k (aggregation weight D_k / sum D)
    bits_min: int = BITS_LOWEST
    bits_max: int = BITS_HIGHEST
    f_steps_hz: Tuple[float, ...] = ()


@dataclass(frozen=True)
class Fleet:
    """A round's planning input: model size, deadline, error budget and the devices."""

    params: int
    deadline_s: float
    error_budget: float
    devices: Tuple[DeviceCoeffs, ...]
    header_bytes: Optional[float] = None  # None: default_header_bytes(tensors)
    tensors: int = 1
    extra: Dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def resolved_header_bytes(self) -> float:
        if self.header_bytes is not None:
            return float(self.header_bytes)
        return default_header_bytes(self.tensors)

    def with_devices(self, devices: Sequence[DeviceCoeffs]) -> Fleet:
        return replace(self, devices=tuple(devices))

    def to_arrays(self) -> FleetArrays:
        """Struct-of-arrays form used by the solver."""
        devs = self.devices

        def col(name: str) -> np.ndarray:
            return np.array([getattr(d, name) for d in devs], dtype=float)

        width = max((len(d.f_steps_hz) for d in devs), default=0)
        steps = np.full((len(devs), width), np.inf)
        for i, d in enumerate(devs):
            if d.f_steps_hz:
                steps[i, : len(d.f_steps_hz)] = sorted(d.f_steps_hz)
        return FleetArrays(
            ids=tuple(d.id for d in devs),
            params=int(self.params),
            deadline_s=float(self.deadline_s),
            error_budget=float(self.error_budget),
            header_bytes=self.resolved_header_bytes,
            kappa=col("kappa"),
            cycles=col("cycles"),
            f_min_hz=col("f_min_hz"),
            f_max_hz=col("f_max_hz"),
            f_steps_hz=steps,
            uplink_bytes_per_s=col("uplink_bytes_per_s"),
            energy_per_byte_j=col("energy_per_byte_j"),
            weight_range=col("weight_range"),
            samples=col("samples"),
            bits_min=col("bits_min"),
            bits_max=col("bits_max"),
        )


_TOP_REQUIRED = ("params", "deadline_s", "error_budget", "devices")
_TOP_OPTIONAL = ("header_bytes", "tensors", "comment")
# name -> (lower bound, strict); all must be finite numbers
_DEVICE_NUMBERS: Dict[str, Tuple[float, bool]] = {
    "kappa": (0.0, False),
    "cycles": (0.0, True),
    "f_min_hz": (0.0, True),
    "f_max_hz": (0.0, True),
    "uplink_bytes_per_s": (0.0, True),
    "energy_per_byte_j": (0.0, False),
    "weight_range": (0.0, False),
    "samples": (0.0, True),
}
_DEVICE_KEYS = ("id", *_DEVICE_NUMBERS, "bits_min", "bits_max", "f_steps_hz")


def _number(value: Any, where: str, lower: float = 0.0, strict: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FleetError(where, f"must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise FleetError(where, "must be finite")
    if strict and value <= lower:
        raise FleetError(where, f"must be > {lower:g}, got {value!r}")
    if not strict and value < lower:
        raise FleetError(where, f"must be >= {lower:g}, got {value!r}")
    return float(value)


def _integer(value: Any, where: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FleetError(where, f"must be an integer, got {type(value).__name__}")
    if not float(value).is_integer():
        raise FleetError(where, f"must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise FleetError(where, f"must be in {lo}..{hi}, got {value!r}")
    return int(value)


def _unknown(obj: Mapping[str, Any], allowed: Sequence[str], prefix: str) -> None:
    for key in obj:
        if key not in allowed:
            raise FleetError(f"{prefix}{key}", "unknown field")


def parse_device(obj: Any, where: str) -> DeviceCoeffs:
    """Validate one device object; ``where`` is its path, e.g. ``devices[2]``."""
    if not isinstance(obj, Mapping):
        raise FleetError(where, "must be an object")
    _unknown(obj, _DEVICE_KEYS, f"{where}.")
    for key in _DEVICE_KEYS:
        if key != "f_steps_hz" and key not in obj:
            raise FleetError(f"{where}.{key}", "missing")
    dev_id = obj["id"]
    if isinstance(dev_id, bool) or not isinstance(dev_id, (str, int)) or str(dev_id) == "":
        raise FleetError(f"{where}.id", "must be a non-empty string")
    nums = {
        k: _number(obj[k], f"{where}.{k}", lower, strict)
        for k, (lower, strict) in _DEVICE_NUMBERS.items()
    }
    if nums["f_min_hz"] > nums["f_max_hz"]:
        raise FleetError(f"{where}.f_min_hz", "must be <= f_max_hz")
    bits_min = _integer(obj["bits_min"], f"{where}.bits_min", BITS_LOWEST, BITS_HIGHEST)
    bits_max = _integer(obj["bits_max"], f"{where}.bits_max", BITS_LOWEST, BITS_HIGHEST)
    if bits_min > bits_max:
        raise FleetError(f"{where}.bits_min", "must be <= bits_max")
    steps: List[float] = []
    raw_steps = obj.get("f_steps_hz")
    if raw_steps is not None:
        if not isinstance(raw_steps, list) or not raw_steps:
            raise FleetError(f"{where}.f_steps_hz", "must be a non-empty list of frequencies")
        for j, s in enumerate(raw_steps):
            at = f"{where}.f_steps_hz[{j}]"
            value = _number(s, at)
            if not nums["f_min_hz"] <= value <= nums["f_max_hz"]:
                raise FleetError(at, "must lie within [f_min_hz, f_max_hz]")
            steps.append(value)
    return DeviceCoeffs(
        id=str(dev_id),
        bits_min=bits_min,
        bits_max=bits_max,
        f_steps_hz=tuple(sorted(set(steps))),
        **nums,
    )


def parse_fleet(obj: Any) -> Fleet:
    """Validate a decoded FLEET.json object; raises :class:`FleetError` naming the field."""
    if not isinstance(obj, Mapping):
        raise FleetError("(top level)", "must be a JSON object")
    _unknown(obj, _TOP_REQUIRED + _TOP_OPTIONAL, "")
    for key in _TOP_REQUIRED:
        if key not in obj:
            raise FleetError(key, "missing")
    params = obj["params"]
    if isinstance(params, bool) or not isinstance(params, int) or params <= 0:
        raise FleetError("params", f"must be a positive integer, got {params!r}")
    deadline_s = _number(obj["deadline_s"], "deadline_s")
    error_budget = _number(obj["error_budget"], "error_budget", strict=False)
    header = obj.get("header_bytes")
    header_bytes = None if header is None else _number(header, "header_bytes", strict=False)
    tensors = _integer(obj.get("tensors", 1), "tensors", 1, 1 << 30)
    devices = obj["devices"]
    if not isinstance(devices, list) or not devices:
        raise FleetError("devices", "must be a non-empty list")
    parsed = [parse_device(d, f"devices[{i}]") for i, d in enumerate(devices)]
    seen: Dict[str, int] = {}
    for i, d in enumerate(parsed):
        if d.id in seen:
            raise FleetError(f"devices[{i}].id", f"duplicate of devices[{seen[d.id]}].id")
        seen[d.id] = i
    extra = {"comment": obj["comment"]} if "comment" in obj else {}
    return Fleet(
        params=params,
        deadline_s=deadline_s,
        error_budget=error_budget,
        devices=tuple(parsed),
        header_bytes=header_bytes,
        tensors=tensors,
        extra=extra,
    )


def fleet_to_dict(fleet: Fleet) -> Dict[str, Any]:
    """Inverse of :func:`parse_fleet` (for writing example and simulated fleets)."""
    out: Dict[str, Any] = {
        "params": fleet.params,
        "deadline_s": fleet.deadline_s,
        "error_budget": fleet.error_budget,
    }
    if fleet.header_bytes is not None:
        out["header_bytes"] = fleet.header_bytes
    if fleet.tensors != 1:
        out["tensors"] = fleet.tensors
    devices = []
    for d in fleet.devices:
        item: Dict[str, Any] = {k: getattr(d, k) for k in _DEVICE_KEYS if k != "f_steps_hz"}
        if d.f_steps_hz:
            item["f_steps_hz"] = list(d.f_steps_hz)
        devices.append(item)
    out["devices"] = devices
    return out
