"""From stored device records to one round's plan, and back: the allocator's I/O boundary.

``plan_round`` turns device rows (calibration profiles, refitted coefficients, last update
ranges) into an allocator :class:`Fleet`, derives the deadline and the error budget, and calls
the pure allocator. ``refit_device`` folds a device's measured reports back into its
coefficients after each round (closed loop).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from coordinator.allocator import DeviceCoeffs, Fleet, RoundMeasurement, allocate, refit
from coordinator.allocator.plan import DevicePlan
from coordinator.allocator.schemes import FIXED, FP32, Scheme
from coordinator.config import CoordinatorConfig
from coordinator.store import Store
from coordinator.validation import PROFILE_RANGES
from greenfed import codec

log = logging.getLogger(__name__)

# f is the compute clock each device reported (its CPU's, or its GPU's when it trains on
# CUDA): ranges and steps come from its profile, never from assumed CPU figures.
NOMINAL_FREQ_HZ = 1.0e9  # used only when a device reports no frequency at all (said in notes)


@dataclass(frozen=True)
class PlannedDevice(DevicePlan):
    """The allocator's plan for one device, with the codec mode it encodes with and its bits
    as written in the assignment (32 for fp32)."""

    mode: str = "stochastic"

    @property
    def device_id(self) -> str:
        return self.id


@dataclass
class RoundPlan:
    deadline_s: float
    error_budget: float
    multiplier: Optional[float]
    error: float
    total_energy_j: float
    devices: List[PlannedDevice]
    excluded: Dict[str, str] = field(default_factory=dict)
    note: str = ""

    def summary(self) -> str:
        bits = ",".join(str(d.bits) for d in self.devices)
        return f"bits [{bits}], predicted {self.total_energy_j:.3g} J"


def _profile(row: Mapping[str, Any]) -> Dict[str, Any]:
    try:
        return dict(json.loads(row["profile_json"] or "{}"))
    except ValueError:
        return {}


def header_bytes_for(params: Mapping[str, np.ndarray], bits: int, block_size: int) -> float:
    shapes = {k: tuple(v.shape) for k, v in params.items()}
    return float(codec.header_bytes(shapes, bits=bits, block_size=block_size or None))


def plausible(value: Any, name: str) -> float:
    """A stored profile or fitted coefficient if finite and in its physical range
    (validation.PROFILE_RANGES), else 0.0 ("unknown"): stored rows may predate a check, and a
    planner fed an infinite or denormal coefficient plans infinite times and energies."""
    try:
        v = float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0
    lo, hi = PROFILE_RANGES.get(name, (0.0, math.inf))
    return v if math.isfinite(v) and lo <= v <= hi else 0.0


def _ratio(value: Any, by: float) -> float:
    try:
        return float(value or 0.0) / by
    except (TypeError, ValueError):
        return 0.0


def base_coeffs(row: Mapping[str, Any], cfg: CoordinatorConfig, notes: List[str]) -> DeviceCoeffs:
    """Coefficients from the device's calibration profile (before any refit); a value that is
    missing, non-finite or outside its plausible range counts as unknown (a default, noted)."""
    p = _profile(row)
    steps_seen = [f for f in (plausible(x, "f_max_hz") for x in p.get("f_steps_hz") or ()) if f]
    # Without DVFS a profile lists only the one frequency it measured at (no range): plan at
    # that frequency, since kappa and cycles were measured there.
    f_max = plausible(p.get("f_max_hz"), "f_max_hz") or max(steps_seen, default=0.0)
    f_min = plausible(p.get("f_min_hz"), "f_min_hz") or min(steps_seen, default=0.0) or f_max
    if f_min > f_max:
        f_min = f_max
    if f_max <= 0:
        f_min = f_max = NOMINAL_FREQ_HZ
        notes.append(
            f"{row['id']}: no compute-clock frequency known, nominal {NOMINAL_FREQ_HZ:g} Hz used"
        )
    if p.get("clock") == "nominal":
        notes.append(
            f"{row['id']}: compute clock unreadable; planned in seconds per sample at its fixed "
            f"clock (a nominal {f_max:g} Hz reference, not a reading)"
        )
    steps = tuple(steps_seen)
    samples_per_round = cfg.local_steps * cfg.batch_size
    cps = plausible(p.get("cycles_per_sample"), "cycles_per_sample")
    if cps <= 0:
        cps = 1e6
        notes.append(f"{row['id']}: no cycles_per_sample in its profile, 1e6 assumed")
    rate = plausible(p.get("uplink_bytes_per_s"), "uplink_bytes_per_s")
    if row["link_mbps"]:
        # A test link's configured rate: a better prior than a calibration's loopback upload,
        # replaced by the measured rate from the first upload on (device_coeffs).
        rate = plausible(float(row["link_mbps"]) * 1e6 / 8.0, "uplink_bytes_per_s")
    if rate <= 0:
        rate = 1e6
        notes.append(f"{row['id']}: no uplink rate measured, 1 MB/s assumed")
    return DeviceCoeffs(
        id=str(row["id"]),
        kappa=max(plausible(p.get("kappa"), "kappa"), 1e-40),
        cycles=cps * samples_per_round,
        f_min_hz=f_min,
        f_max_hz=f_max,
        uplink_bytes_per_s=rate,
        energy_per_byte_j=max(plausible(p.get("energy_per_byte_j"), "energy_per_byte_j"), 1e-15),
        weight_range=cfg.prior_update_range,
        samples=float(row["samples"]),
        bits_min=int(row["bits_min"] or 1),
        bits_max=int(row["bits_max"] or 16),
        f_steps_hz=tuple(s for s in steps if f_min <= s <= f_max),
    )


def device_coeffs(row: Mapping[str, Any], cfg: CoordinatorConfig, notes: List[str]) -> DeviceCoeffs:
    """Refitted coefficients where the device has reported, else its profile's."""
    base = base_coeffs(row, cfg, notes)
    try:
        fitted = json.loads(row["coeffs_json"] or "{}")
    except ValueError:
        fitted = {}
    if not fitted:
        return base
    per_round = float(cfg.local_steps * cfg.batch_size)
    keep = ("kappa", "uplink_bytes_per_s", "energy_per_byte_j", "weight_range")
    values = {k: plausible(fitted.get(k), k) for k in keep}
    values["cycles"] = per_round * plausible(
        _ratio(fitted.get("cycles"), per_round), "cycles_per_sample"
    )
    values = {k: v for k, v in values.items() if v > 0}
    return DeviceCoeffs(**{**base.__dict__, **values})


def derive_deadline(
    cfg: CoordinatorConfig, coeffs: List[DeviceCoeffs], params: int, header: float
) -> float:
    """Fixed, or factor x the slowest device's fastest possible round (lowest bits, f_max),
    within [deadline_min_s, deadline_max_s]: one slow (or lying) device cannot hold the fleet;
    a device that cannot finish within the ceiling sits the round out (the plan excludes it)."""
    if cfg.deadline_s is not None:
        return float(cfg.deadline_s)
    fastest = [
        c.cycles / c.f_max_hz + (params * c.bits_min / 8.0 + header) / c.uplink_bytes_per_s
        for c in coeffs
    ]
    slowest = max((t for t in fastest if math.isfinite(t)), default=0.0)
    return min(cfg.deadline_max_s, max(cfg.deadline_min_s, cfg.deadline_factor * slowest))


def error_budget(cfg: CoordinatorConfig, params: int, last_sq_norm: Optional[float]) -> float:
    """Absolute, or a share of the last aggregated update's squared norm.

    Before the first round no update exists: the prior assumes an update whose values spread
    over ``prior_update_range`` with standard deviation range/4, i.e. ‖Δ‖² ≈ d (R/4)².
    """
    if cfg.error_budget is not None:
        return float(cfg.error_budget)
    if last_sq_norm is not None and last_sq_norm > 0:
        return cfg.error_budget_rel * float(last_sq_norm)
    return cfg.error_budget_rel * params * (cfg.prior_update_range / 4.0) ** 2


def plan_round(
    cfg: CoordinatorConfig,
    devices: Sequence[Mapping[str, Any]],
    params: Mapping[str, np.ndarray],
    last_sq_norm: Optional[float],
) -> RoundPlan:
    notes: List[str] = []
    d = int(sum(int(v.size) for v in params.values()))
    scheme = cfg.scheme_value
    header = header_bytes_for(params, scheme.header_bits, cfg.block_size)
    coeffs = [device_coeffs(row, cfg, notes) for row in devices]
    deadline = derive_deadline(cfg, coeffs, d, header)
    budget = error_budget(cfg, d, last_sq_norm)
    excluded: Dict[str, str] = {}

    def fleet_of(devices: List[DeviceCoeffs]) -> Fleet:
        return Fleet(
            params=d,
            deadline_s=deadline,
            error_budget=budget,
            devices=tuple(devices),
            header_bytes=header,
            tensors=len(params),
        )

    plan = None
    while coeffs:
        plan = allocate(fleet_of(coeffs), scheme)
        late = {
            p.device_id for p in plan.infeasible if p.kind == "deadline" and p.device_id is not None
        }
        for p in plan.infeasible:
            if p.device_id in late:
                excluded[p.device_id] = p.message
        for dp in plan.devices:  # the last guard: a device's plan is finite, or it sits out
            figures = (dp.freq_hz, dp.energy_j, dp.compute_energy_j, dp.comm_energy_j, dp.time_s)
            if not all(math.isfinite(x) for x in figures):
                late.add(dp.id)
                excluded[dp.id] = f"{dp.id}: its plan is not finite (coefficients out of range)"
        if not late:
            break
        coeffs = [c for c in coeffs if c.id not in late]
    if plan is None or not coeffs:
        # Every device is too slow for the deadline: give them all the round anyway, at their
        # lowest bits; those that miss it are recorded as late.
        coeffs = [device_coeffs(row, cfg, notes) for row in devices]
        lowest = scheme if scheme.kind == FP32 else Scheme(FIXED, scheme.fixed_bits or 1)
        plan = allocate(fleet_of(coeffs), lowest)
        notes.append("no device can meet the deadline; all assigned anyway")
        excluded = {}
    for p in plan.infeasible:
        if p.kind != "deadline":
            notes.append(p.message)
    planned = [
        PlannedDevice(
            **{**asdict(dp), "bits": scheme.assigned_bits(int(dp.bits))}, mode=scheme.codec_mode
        )
        for dp in plan.devices
    ]
    return RoundPlan(
        deadline_s=deadline,
        error_budget=budget,
        multiplier=plan.multiplier,
        error=float(plan.error),
        total_energy_j=float(plan.total_energy_j),
        devices=planned,
        excluded=excluded,
        note="; ".join(notes)[:2000],
    )


def measurement_of(report: Mapping[str, Any]) -> Optional[RoundMeasurement]:
    needed = (
        "compute_dynamic_j",
        "compute_time_s",
        "mean_freq_hz",
        "samples",
        "bytes_up",
        "comm_time_s",
        "comm_dynamic_j",
    )
    if any(report.get(k) is None for k in needed):
        return None
    return RoundMeasurement(
        compute_energy_dynamic_j=float(report["compute_dynamic_j"]),
        compute_time_s=float(report["compute_time_s"]),
        mean_freq_hz=float(report["mean_freq_hz"]),
        samples=float(report["samples"]),
        bytes_up=float(report["bytes_up"]),
        comm_time_s=float(report["comm_time_s"]),
        comm_energy_dynamic_j=float(report["comm_dynamic_j"]),
    )


def refit_device(store: Store, device_id: str, cfg: CoordinatorConfig) -> None:
    """Refit a device's coefficients from its recent reports (oldest first) and store them."""
    row = store.get_device(device_id)
    if row is None:
        return
    # Late or refused rounds count too: their training and whatever crossed the link were
    # measured (measurement_of skips reports that lack a window or bytes).
    reports = list(reversed(store.device_reports(device_id, with_errors=True)))
    measurements = [m for m in (measurement_of(r) for r in reports) if m is not None]
    notes: List[str] = []
    base = base_coeffs(row, cfg, notes)
    fitted = refit(base, measurements, samples_per_round=cfg.local_steps * cfg.batch_size)
    out = {
        k: float(getattr(fitted, k))
        for k in ("kappa", "cycles", "uplink_bytes_per_s", "energy_per_byte_j")
    }
    ranges = [r["update_range"] for r in reports if r.get("update_range")]
    if ranges:
        out["weight_range"] = float(ranges[-1])
    out = {k: v for k, v in out.items() if math.isfinite(v) and v > 0}
    store.set_device_coeffs(device_id, out)
